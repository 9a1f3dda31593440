package processor

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/esimflow/esimflow/processor/merge"
	"github.com/esimflow/esimflow/shared/event"
	"github.com/esimflow/esimflow/shared/provider"
	"github.com/esimflow/esimflow/shared/store"
	"github.com/esimflow/esimflow/shared/stream"
	"github.com/nats-io/nats.go/jetstream"
)

// ReplayStore is what a replay writes: state, and the seen marks of recent
// events.
type ReplayStore interface {
	merge.State
	store.SeenSet
}

// ReplayOptions say where a replay starts and what it reports.
type ReplayOptions struct {
	// FromSeq starts at this ESIM_EVENTS sequence; Since at the first event
	// stored at or after this time. Neither: from the first event kept.
	FromSeq uint64
	Since   time.Time
	// SeenTTL is the processor's seen TTL: events stored within it get their
	// dedupe key marked seen again, so late provider retries stay skipped —
	// only those the processor has acknowledged (up to its consumer's ack
	// floor when the replay starts). Marking one it has yet to handle would
	// make it skip the event as a retry, and its intents would never be
	// published.
	SeenTTL time.Duration
	// Workers merge concurrently (merges are order-independent); default 16.
	Workers int
	// Progress, when set, is told the total once; Step each event done (one
	// call at a time).
	Progress func(total uint64)
	Step     func()
	// Providers read stored events by the adapter their headers name, as
	// the processor does; nil means the built-ins.
	Providers *provider.Registry

	seenUpTo uint64 // the processor's ack floor: the last sequence to mark seen
}

// ReplayStats count what a replay did.
type ReplayStats struct {
	Events    uint64 // read from the stream
	Applied   uint64 // merged into the store
	Parked    uint64 // unknown types and health checks: nothing to merge
	Malformed uint64 // not an event (its dead letter says why)
}

// Replay rebuilds order and profile state from ESIM_EVENTS into st, up to the
// last event stored when it starts — after losing the store, say. Every
// well-formed event is merged as the processor merges it (merges are
// idempotent and order-independent, so duplicates and a processor running
// meanwhile do no harm), including events still waiting in ESIM_DLQ after
// transient failures: re-driving them later changes nothing.
//
// Replay publishes no intents: the customer messages of these events went out
// when they were first processed, and the notifier's claims may have been lost
// with the store, so a re-published intent could be sent a second time.
func Replay(ctx context.Context, streams Streams, names stream.Names, st ReplayStore, o ReplayOptions) (ReplayStats, error) {
	if o.Providers == nil {
		reg, err := provider.Load("", provider.Options{})
		if err != nil {
			return ReplayStats{}, err
		}
		o.Providers = reg
	}
	name := names.Stream(stream.Events)
	cons, last, err := replayConsumer(ctx, streams, name, o)
	if err != nil {
		return ReplayStats{}, err
	}
	if o.SeenTTL > 0 {
		if o.seenUpTo, err = ackFloor(ctx, streams, name, names.Consumer(stream.ProcessorConsumer)); err != nil {
			return ReplayStats{}, err
		}
	}
	total := uint64(0)
	if cons != nil {
		if ci := cons.CachedInfo(); ci != nil {
			total = ci.NumPending
		}
	}
	if o.Progress != nil {
		o.Progress(total)
	}
	if total == 0 {
		return ReplayStats{}, nil
	}
	it, err := cons.Messages()
	if err != nil {
		return ReplayStats{}, fmt.Errorf("read %s: %w", name, err)
	}
	defer it.Stop()

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pool := startReplayPool(ctx, cancel, st, o)
	events := pool.feed(ctx, it, last, name)
	stats, err := pool.wait(ctx)
	stats.Events = events
	return stats, err
}

// replayConsumer opens an ordered consumer on the events stream from where
// the options say, and returns it with the stream's last sequence, where the
// replay stops: events stored meanwhile are the processors' to handle. It
// returns no consumer when there is nothing to replay.
func replayConsumer(ctx context.Context, streams Streams, name string, o ReplayOptions) (jetstream.Consumer, uint64, error) {
	s, err := streams.Stream(ctx, name)
	if err != nil {
		return nil, 0, fmt.Errorf("stream %s: %w", name, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("stream %s: %w", name, err)
	}
	last := info.State.LastSeq
	if info.State.Msgs == 0 || o.FromSeq > last {
		return nil, last, nil
	}
	cfg := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy}
	switch {
	case o.FromSeq > 0:
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, o.FromSeq
	case !o.Since.IsZero():
		since := o.Since
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &since
	}
	cons, err := s.OrderedConsumer(ctx, cfg)
	if err != nil {
		return nil, 0, fmt.Errorf("read %s: %w", name, err)
	}
	return cons, last, nil
}

// ackFloor returns the stream sequence up to which the processor's consumer
// has acknowledged every event; 0 when there is no such consumer.
func ackFloor(ctx context.Context, streams Streams, name, consumer string) (uint64, error) {
	s, err := streams.Stream(ctx, name)
	if err != nil {
		return 0, fmt.Errorf("stream %s: %w", name, err)
	}
	c, err := s.Consumer(ctx, consumer)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("consumer %s: %w", consumer, err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("consumer %s: %w", consumer, err)
	}
	return info.AckFloor.Stream, nil
}

// replayPool merges events on several workers — merges are order-independent
// — and counts what they did. The first merge that fails cancels the replay.
type replayPool struct {
	work   chan jetstream.Msg
	wg     sync.WaitGroup
	cancel context.CancelFunc

	mu    sync.Mutex
	stats ReplayStats
	err   error
}

func startReplayPool(ctx context.Context, cancel context.CancelFunc, st ReplayStore, o ReplayOptions) *replayPool {
	workers := o.Workers
	if workers <= 0 {
		workers = 16
	}
	p := &replayPool{work: make(chan jetstream.Msg, 2*workers), cancel: cancel}
	for range workers {
		p.wg.Go(func() {
			for msg := range p.work {
				kind, err := replayOne(ctx, st, o.Providers, msg, o.SeenTTL, o.seenUpTo)
				p.done(kind, err, o.Step)
			}
		})
	}
	return p
}

// done counts one event, or keeps the first error and cancels the rest.
func (p *replayPool) done(kind string, err error, step func()) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch {
	case err != nil && p.err == nil:
		p.err = err
		p.cancel()
	case kind == outcomeApplied:
		p.stats.Applied++
	case kind == outcomeParked:
		p.stats.Parked++
	case kind == outcomeDead:
		p.stats.Malformed++
	}
	if step != nil {
		step()
	}
}

// feed hands the workers every event up to last and returns how many it
// read; a read that fails stops the replay with that error.
func (p *replayPool) feed(ctx context.Context, it jetstream.MessagesContext, last uint64, name string) uint64 {
	defer close(p.work)
	var events uint64
	for ctx.Err() == nil {
		msg, err := it.Next()
		if err != nil {
			p.mu.Lock()
			if p.err == nil {
				p.err = fmt.Errorf("read %s: %w", name, err)
			}
			p.mu.Unlock()
			return events
		}
		meta, err := msg.Metadata()
		if err != nil {
			continue
		}
		events++
		p.work <- msg
		if meta.Sequence.Stream >= last || meta.NumPending == 0 {
			return events
		}
	}
	return events
}

// wait waits for the workers and returns what they did, with the first error;
// a deadline that ended the replay is an error, a cancel by the caller not.
func (p *replayPool) wait(ctx context.Context) (ReplayStats, error) {
	p.wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.err == nil && ctx.Err() != nil && !errors.Is(ctx.Err(), context.Canceled) {
		p.err = ctx.Err()
	}
	return p.stats, p.err
}

// replayOne merges one event; it returns outcomeApplied, outcomeParked or
// outcomeDead (not an event).
func replayOne(ctx context.Context, st ReplayStore, providers *provider.Registry, msg jetstream.Msg, seenTTL time.Duration, seenUpTo uint64) (string, error) {
	meta, err := msg.Metadata()
	if err != nil {
		return "", fmt.Errorf("metadata: %w", err)
	}
	ev, decodeErr := providers.DecodeStored(event.Decoder{}, msg.Headers(), msg.Data())
	key := Stamp(&ev, msg.Headers(), decodeErr, msg.Data(), meta.Sequence.Stream) // as the processor saw it
	switch {
	case decodeErr != nil:
		return outcomeDead, nil
	case parked(ev):
		return outcomeParked, nil
	}
	if _, err := merge.Apply(ctx, st, ev, eventTime(ev, msg.Headers().Get(stream.HeaderReceivedAt), meta.Timestamp)); err != nil {
		return "", fmt.Errorf("event %d: %w", meta.Sequence.Stream, err)
	}
	if seenTTL > 0 && time.Since(meta.Timestamp) < seenTTL && meta.Sequence.Stream <= seenUpTo {
		if err := st.MarkSeen(ctx, key); err != nil {
			return "", fmt.Errorf("event %d: mark seen: %w", meta.Sequence.Stream, err)
		}
	}
	return outcomeApplied, nil
}
