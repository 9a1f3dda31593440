package notifier

import (
	"github.com/esimflow/esimflow/shared/intent"
	"github.com/prometheus/client_golang/prometheus"
)

type metrics struct {
	notifications *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		notifications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "esimflow_notifications_total",
			Help: "Notification intents handled, by kind and outcome (sent, suppressed, failed, already_done).",
		}, []string{"kind", "outcome"}),
	}
	reg.MustRegister(m.notifications)
	return m
}

func (m *metrics) outcome(k intent.Kind, outcome string) {
	m.notifications.WithLabelValues(string(k), outcome).Inc()
}
