package processor_test

import (
	"math/rand/v2"
	"testing"
	"time"
)

// BenchmarkThroughput measures events/s through one processor instance with
// Redis (the machine's) on an in-process NATS: a backlog of distinct events
// published first, then drained.
func BenchmarkThroughput(b *testing.B) {
	for _, bc := range []struct {
		name             string
		workers, batches int
	}{
		{"per-message/workers=8", 8, 0},
		{"per-message/workers=32", 32, 0},
		{"batch=16/workers=4", 4, 16},
		{"batch=32/workers=4", 4, 32},
		{"batch=64/workers=2", 2, 64},
	} {
		b.Run(bc.name, func(b *testing.B) {
			r := newRig(b, rigOpts{})
			st, _ := r.redisStore(b, "")
			var bodies []string
			for n := 200; len(bodies) < max(b.N, 2000); n *= 2 {
				bodies = lifecycles(rand.New(rand.NewPCG(uint64(n), 9)), n, false)
			}
			bodies = bodies[:max(b.N, 2000)]
			for _, body := range bodies {
				r.publish(b, body, false)
			}
			b.ResetTimer()
			start := time.Now()
			r.start(b, st, instOpts{workers: bc.workers, batch: bc.batches})
			waitForIn(b, 10*time.Minute, "backlog drained", func() bool { return r.quiet(b) })
			b.StopTimer()
			b.ReportMetric(float64(len(bodies))/time.Since(start).Seconds(), "events/s")
		})
	}
}
