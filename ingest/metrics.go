package ingest

import (
	"sort"
	"sync"
	"time"

	"github.com/esimflow/esimflow/shared/event"
	"github.com/prometheus/client_golang/prometheus"
)

// Outcomes of a webhook request, the values of the outcome label.
const (
	outcomeStored      = "stored"
	outcomeDuplicate   = "duplicate"        // JetStream's duplicate window caught a retry
	outcomeInvalid     = "invalid"          // not JSON: 400
	outcomeBadRequest  = "bad_request"      // unreadable body: 400
	outcomeTooLarge    = "too_large"        // 413
	outcomeUnavailable = "unavailable"      // no PubAck in time: 503
	outcomeHealth      = "health_check"     // provider's ping: answered, not stored
	outcomeReplay      = "replay"           // a signed message delivered before: answered, not stored again
	outcomeHandshake   = "handshake_failed" // a provider handshake (SNS subscription) that failed: 502
)

type metrics struct {
	webhooks *prometheus.CounterVec
	// counters are webhooks' counters already resolved, by label values:
	// every request counts once, and a map lookup is cheaper than the
	// vector's hashing of its labels (BenchmarkServeWebhook).
	countersMu     sync.RWMutex
	counters       map[counterKey]prometheus.Counter
	publishSeconds prometheus.Histogram
	bodyBytes      prometheus.Histogram
	arrivals       *arrivals
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
		arrivals: newArrivals(time.Now),
		counters: map[counterKey]prometheus.Counter{},
	}
	reg.MustRegister(m.webhooks, m.publishSeconds, m.bodyBytes, m.arrivals)
	return m
}

type counterKey struct {
	t       event.Type
	outcome string
}

func (m *metrics) received(t event.Type, outcome string) {
	k := counterKey{t, outcome}
	m.countersMu.RLock()
	c, ok := m.counters[k]
	m.countersMu.RUnlock()
	if !ok {
		c = m.webhooks.WithLabelValues(t.Token(), outcome)
		m.countersMu.Lock()
		m.counters[k] = c
		m.countersMu.Unlock()
	}
	c.Inc()
}

// arrivals knows, per provider, when a webhook was last stored and how many
// were stored in each minute of the last hour: the operator console flags a
// provider silent for longer than usual from the two gauges it exports.
// Safe for concurrent use.
type arrivals struct {
	now  func() time.Time
	mu   sync.Mutex
	by   map[string]*window
	last *prometheus.Desc
	gap  *prometheus.Desc
}

// window counts one provider's webhooks per minute over the last hour.
type window struct {
	first, last time.Time
	minute      [60]int64 // the minute (Unix minutes) each count is of
	count       [60]int
}

func newArrivals(now func() time.Time) *arrivals {
	return &arrivals{now: now, by: map[string]*window{},
		last: prometheus.NewDesc("esimflow_webhook_last_received_timestamp_seconds",
			"When ingest last stored a webhook of the provider (Unix seconds); a duplicate counts.", []string{"provider"}, nil),
		gap: prometheus.NewDesc("esimflow_webhook_usual_gap_seconds",
			"The provider's mean gap between stored webhooks over the last hour (or since ingest started, if later); absent with fewer than 2 webhooks in that time.", []string{"provider"}, nil),
	}
}

func (a *arrivals) add(provider string, at time.Time) {
	a.mu.Lock()
	defer a.mu.Unlock()
	w := a.by[provider]
	if w == nil {
		w = &window{first: at}
		a.by[provider] = w
	}
	if at.After(w.last) {
		w.last = at
	}
	m := at.Unix() / 60
	i := m % 60
	if w.minute[i] != m {
		w.minute[i], w.count[i] = m, 0
	}
	w.count[i]++
}

// Describe and Collect make arrivals a prometheus.Collector.
func (a *arrivals) Describe(ch chan<- *prometheus.Desc) {
	ch <- a.last
	ch <- a.gap
}

func (a *arrivals) Collect(ch chan<- prometheus.Metric) {
	now := a.now()
	a.mu.Lock()
	defer a.mu.Unlock()
	providers := make([]string, 0, len(a.by))
	for p := range a.by {
		providers = append(providers, p)
	}
	sort.Strings(providers)
	for _, p := range providers {
		w := a.by[p]
		ch <- prometheus.MustNewConstMetric(a.last, prometheus.GaugeValue, float64(w.last.UnixNano())/1e9, p)
		if gap, ok := w.usualGap(now); ok {
			ch <- prometheus.MustNewConstMetric(a.gap, prometheus.GaugeValue, gap.Seconds(), p)
		}
	}
}

// usualGap is the span watched (the last hour, or since the first webhook
// if later) divided by the webhooks stored in it; false with fewer than 2.
func (w *window) usualGap(now time.Time) (time.Duration, bool) {
	cur := now.Unix() / 60
	n := 0
	for i := range w.minute {
		if w.count[i] > 0 && w.minute[i] > cur-60 && w.minute[i] <= cur {
			n += w.count[i]
		}
	}
	if n < 2 {
		return 0, false
	}
	span := min(now.Sub(w.first), time.Hour)
	return span / time.Duration(n), true
}
