package ingest

import (
	"github.com/esimflow/esimflow/shared/event"
	"github.com/prometheus/client_golang/prometheus"
)

// Outcomes of a webhook request, the values of the outcome label.
const (
	outcomeStored      = "stored"
	outcomeDuplicate   = "duplicate"    // JetStream's duplicate window caught a retry
	outcomeInvalid     = "invalid"      // not JSON: 400
	outcomeBadRequest  = "bad_request"  // unreadable body: 400
	outcomeTooLarge    = "too_large"    // 413
	outcomeUnavailable = "unavailable"  // no PubAck in time: 503
	outcomeHealth      = "health_check" // provider's ping: answered, not stored
	outcomeReplay      = "replay"       // a signed message delivered before: answered, not stored again
)

type metrics struct {
	webhooks       *prometheus.CounterVec
	publishSeconds prometheus.Histogram
	bodyBytes      prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "esimflow_webhooks_received_total",
			Help: "Webhook requests by event type and outcome (stored, duplicate, health_check, unavailable, or the reason a request was refused).",
		}, []string{"type", "outcome"}),
		publishSeconds: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "esimflow_ingest_publish_seconds",
			Help:    "Time from request to JetStream PubAck.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2, 4},
		}),
		bodyBytes: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "esimflow_ingest_body_bytes",
			Help:    "Size of webhook request bodies read.",
			Buckets: prometheus.ExponentialBuckets(64, 4, 8),
		}),
	}
	reg.MustRegister(m.webhooks, m.publishSeconds, m.bodyBytes)
	return m
}

func (m *metrics) received(t event.Type, outcome string) {
	m.webhooks.WithLabelValues(t.Token(), outcome).Inc()
}
