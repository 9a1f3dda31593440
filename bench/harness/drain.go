package harness

import (
	"context"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/esimflow/esimflow/shared/dedupe"
	"github.com/esimflow/esimflow/shared/event"
	"github.com/esimflow/esimflow/shared/stream"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
)

const tunedConsumer = "tuned"

// drainRun publishes one backlog and lets two consumers of the same stream
// drain it in turn: the tuned consumer (in this process), then bin/processor.
func (h *Harness) drainRun(ctx context.Context) error {
	names, bodies := h.namespace("drain")
	defer h.dropNamespace(context.WithoutCancel(ctx), names)
	if _, _, err := stream.Ensure(ctx, h.js, names, limits); err != nil {
		return fmt.Errorf("streams: %w", err)
	}
	tuned, err := h.js.CreateOrUpdateConsumer(ctx, names.Stream(stream.Events), names.ConsumerConfig(tunedConsumer, limits))
	if err != nil {
		return fmt.Errorf("tuned consumer: %w", err)
	}
	start := time.Now()
	if err := h.publishBacklog(ctx, names, bodies, h.cfg.Backlog); err != nil {
		return err
	}
	h.progress("  backlog of %d published at %.0f msg/s", h.cfg.Backlog, float64(h.cfg.Backlog)/time.Since(start).Seconds())

	infra := h.infraCPU()
	rate, cpu, err := h.tunedDrain(ctx, tuned, names)
	if err != nil {
		return err
	}
	natsCPU, redisCPU, err := infra.perEvent(h.cfg.Backlog)
	if err != nil {
		return err
	}
	h.figs.add("tuned.rate", rate)
	h.figs.add("tuned.cpu", cpu)
	h.figs.add("tuned.nats", natsCPU)
	h.figs.add("tuned.redis", redisCPU)
	h.figs.add("tuned.all", cpu+natsCPU+redisCPU)
	h.progress("  tuned consumer: %.0f events/s", rate)

	infra = h.infraCPU()
	rate, cpu, hwm, err := h.processorDrain(ctx, names)
	if err != nil {
		return err
	}
	if natsCPU, redisCPU, err = infra.perEvent(h.cfg.Backlog); err != nil {
		return err
	}
	h.figs.add("processor.rate", rate)
	h.figs.add("processor.cpu", cpu)
	h.figs.add("processor.rss", mib(hwm))
	h.figs.add("processor.nats", natsCPU)
	h.figs.add("processor.redis", redisCPU)
	h.figs.add("processor.all", cpu+natsCPU+redisCPU)
	h.figs.add("processor.ratio", ratio(rate, h.last("tuned.rate")))
	h.progress("  processor: %.0f events/s", rate)
	return nil
}

// infraStart is the CPU NATS and Redis had used when a drain began.
type infraStart struct {
	pids   []int
	before []time.Duration
	err    error
}

// infraCPU reads NATS's and Redis's CPU so far.
func (h *Harness) infraCPU() infraStart {
	s := infraStart{pids: []int{h.infra.nats.PID(), h.infra.redis.PID()}}
	s.before, s.err = cpuTimes(s.pids)
	return s
}

// perEvent is the CPU µs NATS and Redis used since s, per event of a
// drain of n.
func (s infraStart) perEvent(n int) (nats, redis float64, err error) {
	if s.err != nil {
		return 0, 0, s.err
	}
	after, err := cpuTimes(s.pids)
	if err != nil {
		return 0, 0, err
	}
	return perOp(after[0]-s.before[0], float64(n)), perOp(after[1]-s.before[1], float64(n)), nil
}

// publishBacklog publishes n events as ingest would — the subject of their
// type, the received-at and dedupe-key headers, the key as Nats-Msg-Id — with
// async publishing, 256 in flight.
func (h *Harness) publishBacklog(ctx context.Context, names stream.Names, bodies *Bodies, n int) error {
	var failed atomic.Int64
	var firstErr atomic.Value
	js, err := jetstream.New(h.nc, jetstream.WithPublishAsyncMaxPending(256),
		jetstream.WithPublishAsyncErrHandler(func(_ jetstream.JetStream, _ *nats.Msg, err error) {
			failed.Add(1)
			firstErr.CompareAndSwap(nil, err)
		}))
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	for range n {
		msg, key := ingestMsg(names, bodies.Next(), time.Now())
		if _, err := js.PublishMsgAsync(msg, jetstream.WithMsgID(key), jetstream.WithStallWait(time.Minute)); err != nil {
			return fmt.Errorf("publish backlog: %w", err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(time.Minute):
		return fmt.Errorf("publish backlog: %d acks missing after a minute", js.PublishAsyncPending())
	}
	if f := failed.Load(); f > 0 {
		return fmt.Errorf("publish backlog: %d of %d failed, first: %v", f, n, firstErr.Load())
	}
	return nil
}

// ingestMsg is the message ingest makes of a body, and its Nats-Msg-Id.
func ingestMsg(names stream.Names, body []byte, now time.Time) (*nats.Msg, string) {
	ev, decodeErr := event.Decode(body)
	msg := nats.NewMsg(names.EventSubject(ev.Type))
	msg.Data = body
	msg.Header.Set(stream.HeaderReceivedAt, now.Format(time.RFC3339Nano))
	return msg, dedupe.Key(ev, decodeErr, body)
}

// tunedScript is the tuned consumer's whole work per event: remember the
// dedupe key (skipping an event seen before) and store the event.
var tunedScript = redis.NewScript(`
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
  redis.call('HSET', KEYS[2], 'subject', ARGV[2], 'event', ARGV[3])
  return 1
end
return 0`)

// tunedDrain is the baseline the processor is measured against: two workers,
// each Fetch(256) → one pipelined Lua call per event → ack. It returns events/s
// and this process's CPU µs per event.
func (h *Harness) tunedDrain(ctx context.Context, c jetstream.Consumer, names stream.Names) (rate, cpuPerEvent float64, err error) {
	if err := tunedScript.Load(ctx, h.rdb).Err(); err != nil {
		return 0, 0, fmt.Errorf("tuned: load script: %w", err)
	}
	before, err := usageOf(os.Getpid())
	if err != nil {
		return 0, 0, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg      sync.WaitGroup
		errOnce sync.Once
		werr    error
	)
	prefix := "tuned:" + names.Namespace() + ":"
	watch := h.drainWatch(ctx, names.Stream(stream.Events), names.Consumer(tunedConsumer), uint64(h.cfg.Backlog))
	for range 2 {
		wg.Go(func() {
			for ctx.Err() == nil {
				if err := h.tunedBatch(ctx, c, prefix); err != nil && ctx.Err() == nil {
					errOnce.Do(func() { werr = err })
					cancel()
				}
			}
		})
	}
	res := <-watch
	cancel()
	wg.Wait()
	if werr != nil {
		return 0, 0, werr
	}
	if res.err != nil {
		return 0, 0, res.err
	}
	after, err := usageOf(os.Getpid())
	if err != nil {
		return 0, 0, err
	}
	n := float64(h.cfg.Backlog)
	return n / res.elapsed.Seconds(), perOp(after.CPU-before.CPU, n), nil
}

func (h *Harness) tunedBatch(ctx context.Context, c jetstream.Consumer, prefix string) error {
	batch, err := c.Fetch(256, jetstream.FetchMaxWait(500*time.Millisecond))
	if err != nil {
		return fmt.Errorf("tuned: fetch: %w", err)
	}
	var msgs []jetstream.Msg
	for m := range batch.Messages() {
		msgs = append(msgs, m)
	}
	if err := batch.Error(); err != nil && ctx.Err() == nil && len(msgs) == 0 {
		return fmt.Errorf("tuned: fetch: %w", err)
	}
	if len(msgs) == 0 {
		return nil
	}
	pipe := h.rdb.Pipeline()
	for _, m := range msgs {
		key := stream.DedupeKey(m.Headers())
		tunedScript.EvalSha(ctx, pipe, []string{prefix + "seen:" + key, prefix + "state:" + key}, 604800, m.Subject(), m.Data())
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("tuned: redis: %w", err)
	}
	for _, m := range msgs {
		if err := m.Ack(); err != nil {
			return fmt.Errorf("tuned: ack: %w", err)
		}
	}
	return nil
}

// processorDrain starts bin/processor on the backlog and returns events/s,
// its CPU µs per event and its peak resident set in bytes.
func (h *Harness) processorDrain(ctx context.Context, names stream.Names) (rate, cpuPerEvent float64, hwm uint64, err error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The processor's consumer exists already: Ensure made it with the streams.
	watch := h.drainWatch(ctx, names.Stream(stream.Events), names.Consumer(stream.ProcessorConsumer), uint64(h.cfg.Backlog))
	p, _, err := h.startService(ctx, "processor", names, false)
	if err != nil {
		return 0, 0, 0, err
	}
	defer p.Stop()
	profiled := h.profileAsync(ctx, names.Namespace()+"-drain", min(5*time.Second, h.cfg.Duration/2), p)
	res := <-watch
	<-profiled
	if res.err != nil {
		return 0, 0, 0, res.err
	}
	u, err := p.Usage()
	if err != nil {
		return 0, 0, 0, err
	}
	n := float64(h.cfg.Backlog)
	return n / res.elapsed.Seconds(), perOp(u.CPU, n), u.HWM, nil
}

// drainWatch polls a consumer every 20 ms from now on; its result is the time
// from the last poll that saw the whole backlog (total) to the first that saw
// nothing pending or unacked. Starting it before the consumer keeps the
// consumer's start-up (connecting, creating streams) out of the figure, and
// the 20 ms poll is under 1% of a drain worth measuring.
func (h *Harness) drainWatch(ctx context.Context, streamName, consumer string, total uint64) <-chan drainResult {
	return h.drainWatchFrom(ctx, streamName, consumer, total, nil)
}

// drainWatchFrom is drainWatch calling atStart at every poll that still sees
// the whole backlog: the last call is the drain's start, where a caller reads
// its processes' CPU so their start-up is left out. The result is sent after
// the last call.
func (h *Harness) drainWatchFrom(ctx context.Context, streamName, consumer string, total uint64, atStart func()) <-chan drainResult {
	out := make(chan drainResult, 1)
	go func() {
		start := time.Now()
		limit := start.Add(10 * time.Minute)
		for {
			now := time.Now()
			lag, err := h.lag(ctx, streamName, consumer)
			if err != nil {
				out <- drainResult{err: err}
				return
			}
			if lag >= total {
				start = now
				if atStart != nil {
					atStart()
				}
			}
			if lag == 0 {
				out <- drainResult{elapsed: time.Since(start)}
				return
			}
			if now.After(limit) {
				out <- drainResult{err: fmt.Errorf("%s: %d events still pending after 10 minutes", consumer, lag)}
				return
			}
			select {
			case <-ctx.Done():
				out <- drainResult{err: ctx.Err()}
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	return out
}

type drainResult struct {
	elapsed time.Duration
	err     error
}
