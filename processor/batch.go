package processor

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/esimflow/esimflow/processor/merge"
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
	var todo []*batchItem
	for i := range items {
		it := &items[i]
		switch {
		case seen[i]:
			it.outcome = outcomeDuplicate
		case it.err != nil:
			// Malformed: Handle dead-letters it.
		case parked(it.ev):
			it.outcome = outcomeParked
		case failpoint.Enabled("bug-dead-letter-usage") && it.ev.Type == event.DataUsage && it.ev.UsagePercent < 80:
			// Planted bug (chaos suite): Handle dead-letters it.
		default:
			todo = append(todo, it)
		}
	}
	if bs, ok := h.store.(store.BatchState); ok {
		h.mergeBatch(ctx, bs, todo)
	} else {
		var wg sync.WaitGroup
		for _, it := range todo {
			wg.Go(func() {
				if it.err = h.apply(ctx, it.ev, it.msg); it.err == nil {
					it.outcome = outcomeApplied
				}
			})
		}
		wg.Wait()
	}
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

// mergeBatch merges the batch's events in one read and one compare-and-set
// write of every order and profile they touch, then publishes their intents
// concurrently; see ADR 5. An event whose order or profile another writer
// changed in between, or any event of a batch whose read or write failed, is
// left to Handle, which redoes it alone; the merges are idempotent, so what
// the batch did write is harmless to redo.
func (h *Handler) mergeBatch(ctx context.Context, bs store.BatchState, todo []*batchItem) {
	if len(todo) == 0 {
		return
	}
	timed := make([]merge.Timed, len(todo))
	for i, it := range todo {
		timed[i] = merge.Timed{Event: it.ev, At: h.eventTimeOf(it.ev, it.msg)}
	}
	snap := store.NewSnapshot()
	orderNos, iccids := merge.Touches(timed)
	var changed merge.Changed
	for round := 0; ; round++ {
		if err := bs.ReadState(ctx, snap, orderNos, iccids); err != nil {
			h.log.Warn("batch read failed, events go one by one", "events", len(todo), "err", err)
			return
		}
		missing := merge.Fold(snap, timed, &changed)
		if missing.Empty() {
			break
		}
		if round == 2 {
			// Only an order whose stored profiles keep changing gets here.
			h.log.Warn("batch lacks state after three reads, events go one by one", "events", len(todo))
			return
		}
		orderNos, iccids = missing.Orders, missing.Profiles
	}
	lost, err := bs.WriteState(ctx, snap, slices.Collect(maps.Keys(changed.Orders)), slices.Collect(maps.Keys(changed.Profiles)))
	if err != nil {
		h.log.Warn("batch write failed, events go one by one", "events", len(todo), "err", err)
		return
	}
	failpoint.Inject("after-store-write")
	h.metrics.batchLost.Add(float64(len(lost.Orders) + len(lost.Profiles)))
	var wg sync.WaitGroup
	for i, it := range todo {
		if touchesLost(snap, it.ev, lost) {
			continue
		}
		wg.Go(func() {
			if it.err = h.publishIntents(ctx, it.ev, timed[i].At, it.msg); it.err == nil {
				it.outcome = outcomeApplied
			}
		})
	}
	wg.Wait()
}

// touchesLost reports whether an event's merge includes an order or profile
// whose write lost to another writer.
func touchesLost(snap *store.Snapshot, ev event.Event, lost store.Lost) bool {
	if lost.Empty() {
		return false
	}
	orderNo, iccids := merge.Entities(snap, ev)
	if orderNo != "" && slices.Contains(lost.Orders, orderNo) {
		return true
	}
	for _, iccid := range iccids {
		if slices.Contains(lost.Profiles, iccid) {
			return true
		}
	}
	return false
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
