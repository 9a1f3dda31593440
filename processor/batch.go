package processor

import (
	"context"
	"fmt"
	"sync"

	"github.com/esimflow/esimflow/shared/event"
	"github.com/esimflow/esimflow/shared/failpoint"
	"github.com/esimflow/esimflow/shared/store"
	"github.com/nats-io/nats.go/jetstream"
)

// batchItem is one message of a batch and how far it got.
type batchItem struct {
	msg     jetstream.Msg
	ev      event.Event
	key     string
	outcome string // applied, parked or duplicate once done; "" sends it through Handle
	err     error
}

// HandleBatch processes a batch of messages together: one seen check and one
// seen mark for the whole batch (pipelined where the store can), the merges
// and intents of its events concurrently, then the acks — ack last still
// holds for each event. Whatever the batch cannot finish (a malformed event,
// a failed merge, a store that does not answer) goes through Handle, one
// message at a time with all its failure handling; redoing work is harmless,
// as merges are idempotent and intents deterministic.
func (h *Handler) HandleBatch(ctx context.Context, stop <-chan struct{}, msgs []jetstream.Msg) {
	items := make([]batchItem, len(msgs))
	keys := make([]string, len(msgs))
	for i, m := range msgs {
		ev, key, decodeErr := decode(m)
		items[i] = batchItem{msg: m, ev: ev, key: key}
		if decodeErr != nil {
			items[i].err = decodeErr
		}
		keys[i] = key
	}
	if failpoint.Enabled("bug-ack-first") { // planted bug (chaos suite): breaks invariant 4
		for _, m := range msgs {
			_ = m.Ack()
		}
	}
	if failpoint.Enabled("bug-leak") { // planted bug (chaos suite): memory grows with every batch
		failpoint.Retain(256 << 10)
	}
	h.runBatch(ctx, items, keys)
	failpoint.Inject("after-seen-mark")
	var fallback sync.WaitGroup
	for i := range items {
		it := &items[i]
		if it.outcome == "" {
			// Concurrently: each held event keeps its own message in progress.
			fallback.Go(func() { h.Handle(ctx, stop, it.msg) })
			continue
		}
		if err := it.msg.Ack(); err != nil {
			h.log.Warn("ack failed", "subject", it.msg.Subject(), "err", err)
		}
		h.metrics.processed.WithLabelValues(it.ev.Type.Token(), it.outcome).Inc()
		if it.outcome == outcomeParked {
			if meta, err := it.msg.Metadata(); err == nil {
				h.parked.add(it.ev.Type, meta.Sequence.Stream)
			}
			h.metrics.parked.WithLabelValues(it.ev.Type.Token()).Inc()
		}
	}
	fallback.Wait()
}

// runBatch sets the outcome of every item it finished.
func (h *Handler) runBatch(ctx context.Context, items []batchItem, keys []string) {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	seen, err := h.seenMany(ctx, keys)
	if err != nil {
		return
	}
	if failpoint.Enabled("bug-seen-first") { // planted bug (chaos suite): breaks invariant 4
		var mark []string
		for i, it := range items {
			if !seen[i] && it.err == nil {
				mark = append(mark, keys[i])
			}
		}
		if err := h.markSeenMany(ctx, mark); err != nil {
			return
		}
	}
	var wg sync.WaitGroup
	for i := range items {
		it := &items[i]
		switch {
		case seen[i]:
			it.outcome = outcomeDuplicate
		case it.err != nil:
			// Malformed: Handle dead-letters it.
		case parked(it.ev):
			it.outcome = outcomeParked
		default:
			wg.Go(func() {
				if it.err = h.apply(ctx, it.ev, it.msg); it.err == nil {
					it.outcome = outcomeApplied
				}
			})
		}
	}
	wg.Wait()
	var mark []string
	for i, it := range items {
		if it.outcome == outcomeApplied || it.outcome == outcomeParked {
			mark = append(mark, keys[i])
		}
	}
	if err := h.markSeenMany(ctx, mark); err != nil {
		// Not marked, so not acked here: Handle redoes them.
		for i := range items {
			if items[i].outcome != outcomeDuplicate {
				items[i].outcome = ""
			}
		}
	}
}

func (h *Handler) seenMany(ctx context.Context, keys []string) ([]bool, error) {
	if b, ok := h.store.(store.BatchSeenSet); ok {
		return b.SeenMany(ctx, keys)
	}
	out := make([]bool, len(keys))
	for i, k := range keys {
		seen, err := h.store.Seen(ctx, k)
		if err != nil {
			return nil, fmt.Errorf("seen %s: %w", k, err)
		}
		out[i] = seen
	}
	return out, nil
}

func (h *Handler) markSeenMany(ctx context.Context, keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	if b, ok := h.store.(store.BatchSeenSet); ok {
		return b.MarkSeenMany(ctx, keys)
	}
	for _, k := range keys {
		if err := h.markSeen(ctx, k); err != nil {
			return err
		}
	}
	return nil
}
