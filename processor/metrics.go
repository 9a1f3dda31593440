package processor

import "github.com/prometheus/client_golang/prometheus"

type metrics struct {
	processed   *prometheus.CounterVec
	intents     *prometheus.CounterVec
	deadLetters prometheus.Counter
	parked      *prometheus.CounterVec
	batchLost   prometheus.Counter
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
		batchLost: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "esimflow_processor_batch_conflicts_total",
			Help: "Orders and profiles a batch's compare-and-set write lost to another processor; their events were redone one by one.",
		}),
	}
	reg.MustRegister(m.processed, m.intents, m.deadLetters, m.parked, m.batchLost)
	return m
}
