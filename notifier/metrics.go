package notifier

import (
	"github.com/esimflow/esimflow/shared/intent"
	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	notifications *prometheus.CounterVec
	sends         *prometheus.CounterVec
	contactWaits  prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		notifications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "esimflow_notifications_total",
			Help: "Notification intents handled, by kind and outcome (sent, suppressed, already_done, dead_lettered).",
		}, []string{"kind", "outcome"}),
		sends: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "esimflow_notification_sends_total",
			Help: "Sends per channel, by outcome (sent, failed, failed_permanent, retried_unknown).",
		}, []string{"channel", "outcome"}),
		contactWaits: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "esimflow_notification_contact_waits_total",
			Help: "Times an intent was put back to wait for its customer's contact.",
		}),
	}
	reg.MustRegister(m.notifications, m.sends, m.contactWaits)
	return m
}

func (m *metrics) outcome(k intent.Kind, outcome string) {
	m.notifications.WithLabelValues(string(k), outcome).Inc()
}

func (m *metrics) send(channel, outcome string) {
	m.sends.WithLabelValues(channel, outcome).Inc()
}
