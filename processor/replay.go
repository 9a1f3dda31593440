package processor

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/esimflow/esimflow/processor/merge"
	"github.com/esimflow/esimflow/shared/event"
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
	// dedupe key marked seen again, so late provider retries stay skipped.
	SeenTTL time.Duration
	// Workers merge concurrently (merges are order-independent); default 16.
	Workers int
	// Progress, when set, is told the total once; Step each event done (one
	// call at a time).
	Progress func(total uint64)
	Step     func()
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
	var stats ReplayStats
	s, err := streams.Stream(ctx, names.Stream(stream.Events))
	if err != nil {
		return stats, fmt.Errorf("stream %s: %w", names.Stream(stream.Events), err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return stats, fmt.Errorf("stream %s: %w", names.Stream(stream.Events), err)
	}
	last := info.State.LastSeq
	cfg := jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy}
	switch {
	case o.FromSeq > 0:
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, o.FromSeq
	case !o.Since.IsZero():
		since := o.Since
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &since
	}
	if info.State.Msgs == 0 || (o.FromSeq > last) {
		report(o, 0)
		return stats, nil
	}
	cons, err := s.OrderedConsumer(ctx, cfg)
	if err != nil {
		return stats, fmt.Errorf("read %s: %w", names.Stream(stream.Events), err)
	}
	total := uint64(0)
	if ci := cons.CachedInfo(); ci != nil {
		total = ci.NumPending
	}
	report(o, total)
	if total == 0 {
		return stats, nil
	}
	it, err := cons.Messages()
	if err != nil {
		return stats, fmt.Errorf("read %s: %w", names.Stream(stream.Events), err)
	}
	defer it.Stop()

	workers := o.Workers
	if workers <= 0 {
		workers = 16
	}
	work := make(chan jetstream.Msg, 2*workers)
	var (
		mu       sync.Mutex
		firstErr error
		wg       sync.WaitGroup
	)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for range workers {
		wg.Go(func() {
			for msg := range work {
				kind, err := replayOne(ctx, st, msg, o.SeenTTL)
				mu.Lock()
				switch {
				case err != nil && firstErr == nil:
					firstErr = err
					cancel()
				case kind == outcomeApplied:
					stats.Applied++
				case kind == outcomeParked:
					stats.Parked++
				case kind == outcomeDead:
					stats.Malformed++
				}
				if o.Step != nil {
					o.Step()
				}
				mu.Unlock()
			}
		})
	}
	for ctx.Err() == nil {
		msg, err := it.Next()
		if err != nil {
			mu.Lock()
			if firstErr == nil {
				firstErr = fmt.Errorf("read %s: %w", names.Stream(stream.Events), err)
			}
			mu.Unlock()
			break
		}
		meta, err := msg.Metadata()
		if err != nil {
			continue
		}
		stats.Events++
		work <- msg
		if meta.Sequence.Stream >= last || meta.NumPending == 0 {
			break
		}
	}
	close(work)
	wg.Wait()
	if firstErr == nil && ctx.Err() != nil && !errors.Is(ctx.Err(), context.Canceled) {
		firstErr = ctx.Err()
	}
	return stats, firstErr
}

func report(o ReplayOptions, total uint64) {
	if o.Progress != nil {
		o.Progress(total)
	}
}

// replayOne merges one event; it returns outcomeApplied, outcomeParked or
// outcomeDead (not an event).
func replayOne(ctx context.Context, st ReplayStore, msg jetstream.Msg, seenTTL time.Duration) (string, error) {
	meta, err := msg.Metadata()
	if err != nil {
		return "", fmt.Errorf("metadata: %w", err)
	}
	ev, decodeErr := event.Decode(msg.Data())
	switch {
	case decodeErr != nil:
		return outcomeDead, nil
	case ev.Type == event.Unknown || ev.Type == event.CheckHealth:
		return outcomeParked, nil
	}
	if err := merge.Apply(ctx, st, ev, eventTime(ev, msg.Headers().Get(stream.HeaderReceivedAt), meta.Timestamp)); err != nil {
		return "", fmt.Errorf("event %d: %w", meta.Sequence.Stream, err)
	}
	if seenTTL > 0 && time.Since(meta.Timestamp) < seenTTL {
		if err := st.MarkSeen(ctx, eventKey(msg.Headers(), ev, decodeErr, msg.Data())); err != nil {
			return "", fmt.Errorf("event %d: mark seen: %w", meta.Sequence.Stream, err)
		}
	}
	return outcomeApplied, nil
}
