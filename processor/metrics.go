package processor

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	processed   *prometheus.CounterVec
	intents     *prometheus.CounterVec
	deadLetters prometheus.Counter
	parked      *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		processed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "esimflow_events_processed_total",
			Help: "Events handled by the processor, by type and outcome (applied, duplicate, parked, retry, dead_letter).",
		}, []string{"type", "outcome"}),
		intents: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "esimflow_intents_published_total",
			Help: "Notification intents published (before JetStream's dedupe), by kind.",
		}, []string{"kind"}),
		deadLetters: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "esimflow_events_dead_lettered_total",
			Help: "Events sent to ESIM_DLQ.",
		}),
		parked: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "esimflow_events_parked_total",
			Help: "Events of an unknown type or health checks: counted, kept in ESIM_EVENTS, neither merged nor retried; by type.",
		}, []string{"type"}),
	}
	reg.MustRegister(m.processed, m.intents, m.deadLetters, m.parked)
	return m
}
