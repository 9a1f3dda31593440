package processor_test

import (
	"context"
	"math/rand/v2"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/esimflow/esimflow/shared/poll"
	"github.com/redis/go-redis/v9"
)

// BenchmarkThroughput measures one processor instance with Redis on an
// in-process NATS: a backlog of 20 000 distinct events is published, then
// drained. Wall-clock events/s depend on what else the machine runs, so it
// also reports what does not: CPU per event (this process: processor and
// NATS server; and the Redis server) and Redis commands per event. The Redis
// is the benchmark's own (memory only), so its counters are exact.
func BenchmarkThroughput(b *testing.B) {
	for _, bc := range []struct {
		name             string
		workers, batches int
	}{
		{"per-message/workers=8", 8, 0},
		{"per-message/workers=32", 32, 0},
		{"batch=32/workers=4", 4, 32},
		{"batch=64/workers=2", 2, 64},
		{"batch=128/workers=2", 2, 128},
		{"batch=256/workers=2", 2, 256},
	} {
		b.Run(bc.name, func(b *testing.B) {
			rs := startRedisServer(b, "--appendonly", "no")
			r := newRig(b, rigOpts{})
			st, c := r.redisStore(b, rs.url())
			n := max(b.N, 2000)
			var bodies []string
			for esims := 200; len(bodies) < n; esims *= 2 {
				bodies = lifecycles(rand.New(rand.NewPCG(uint64(esims), 9)), esims, false)
			}
			r.publishAll(b, bodies[:n])
			cmds0, redisCPU0 := redisCounters(b, c)
			cpu0 := processCPU()
			b.ResetTimer()
			start := time.Now()
			r.start(b, st, instOpts{workers: bc.workers, batch: bc.batches})
			poll.Until(b, "backlog drained", func() bool { return r.quiet(b) }, poll.Timeout(10*time.Minute))
			b.StopTimer()
			wall, cpu := time.Since(start), processCPU()-cpu0
			cmds, redisCPU := redisCounters(b, c)
			b.ReportMetric(float64(n)/wall.Seconds(), "events/s")
			b.ReportMetric(float64(cpu.Microseconds())/float64(n), "cpu-µs/event")
			b.ReportMetric(float64((redisCPU-redisCPU0).Microseconds())/float64(n), "redis-cpu-µs/event")
			b.ReportMetric(float64(cmds-cmds0)/float64(n), "redis-cmds/event")
		})
	}
}

// processCPU is the CPU time (user and system) this process used so far.
func processCPU() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// redisCounters reads the server's commands processed and CPU used.
func redisCounters(b *testing.B, c redis.UniversalClient) (cmds int64, cpu time.Duration) {
	info, err := c.Info(context.Background(), "stats", "cpu").Result()
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(info, "\r\n") {
		k, v, _ := strings.Cut(line, ":")
		switch k {
		case "total_commands_processed":
			cmds, _ = strconv.ParseInt(v, 10, 64)
		case "used_cpu_sys", "used_cpu_user":
			f, _ := strconv.ParseFloat(v, 64)
			cpu += time.Duration(f * float64(time.Second))
		}
	}
	return cmds, cpu
}

// BenchmarkThroughputKV is the all-in-one's processor: state in NATS KV on
// the same (in-process) server, batches of 32 with 4 workers, the default.
func BenchmarkThroughputKV(b *testing.B) {
	r := newRig(b, rigOpts{})
	st := r.kvStore(b)
	n := max(b.N, 2000)
	var bodies []string
	for esims := 200; len(bodies) < n; esims *= 2 {
		bodies = lifecycles(rand.New(rand.NewPCG(uint64(esims), 9)), esims, false)
	}
	r.publishAll(b, bodies[:n])
	cpu0 := processCPU()
	b.ResetTimer()
	start := time.Now()
	r.start(b, st, instOpts{workers: 4, batch: 32})
	poll.Until(b, "backlog drained", func() bool { return r.quiet(b) }, poll.Timeout(10*time.Minute))
	b.StopTimer()
	b.ReportMetric(float64(n)/time.Since(start).Seconds(), "events/s")
	b.ReportMetric(float64((processCPU()-cpu0).Microseconds())/float64(n), "cpu-µs/event")
}
