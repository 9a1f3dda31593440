package admin

import (
	"context"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// WatchConsumer exports a durable consumer's backlog on /metrics, labelled with
// its name: what autoscaling and alerts watch.
func (s *Server) WatchConsumer(c jetstream.Consumer) { s.lag.add(c) }

// lagCollector reads consumer info at scrape time, so the figures are never
// staler than the scrape.
type lagCollector struct {
	mu        sync.Mutex
	consumers []jetstream.Consumer

	pending, ackPending, redelivered *prometheus.Desc
}

func newLagCollector() *lagCollector {
	labels := []string{"consumer"}
	return &lagCollector{
		pending:     prometheus.NewDesc("esimflow_consumer_lag", "Messages in the stream not yet delivered to the durable consumer.", labels, nil),
		ackPending:  prometheus.NewDesc("esimflow_consumer_ack_pending", "Messages delivered and not yet acknowledged.", labels, nil),
		redelivered: prometheus.NewDesc("esimflow_consumer_redelivered", "Messages delivered more than once and not yet acknowledged.", labels, nil),
	}
}

func (c *lagCollector) add(cons jetstream.Consumer) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.consumers = append(c.consumers, cons)
}

func (c *lagCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.pending
	ch <- c.ackPending
	ch <- c.redelivered
}

func (c *lagCollector) Collect(ch chan<- prometheus.Metric) {
	c.mu.Lock()
	consumers := append([]jetstream.Consumer(nil), c.consumers...)
	c.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, cons := range consumers {
		info, err := cons.Info(ctx)
		if err != nil {
			ch <- prometheus.NewInvalidMetric(c.pending, err)
			continue
		}
		ch <- prometheus.MustNewConstMetric(c.pending, prometheus.GaugeValue, float64(info.NumPending), info.Name)
		ch <- prometheus.MustNewConstMetric(c.ackPending, prometheus.GaugeValue, float64(info.NumAckPending), info.Name)
		ch <- prometheus.MustNewConstMetric(c.redelivered, prometheus.GaugeValue, float64(info.NumRedelivered), info.Name)
	}
}
