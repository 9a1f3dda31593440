package processor

import (
	"context"
	"maps"
	"slices"

	"github.com/esimflow/esimflow/processor/merge"
	"github.com/esimflow/esimflow/shared/consume"
	"github.com/esimflow/esimflow/shared/event"
	"github.com/esimflow/esimflow/shared/store"
)

// batchItem is one event of a batch and how far it got.
type batchItem struct {
	msg   *consume.Msg
	ev    event.Event
	key   string
	err   error  // decoding
	label string // applied, parked or duplicate once its effects are stored
	copy  bool   // seen already: only its copy is folded (Handler.foldCopy)
	// failed is why its intents were not all stored: the event is neither
	// marked seen nor acked, and fails on its own (retried later).
	failed error
}

// HandleBatch decides a batch of events together (a consume.BatchHandler):
// one round trip for the batch's seen check and the read of the state its
// events touch, one compare-and-set write of that state, their intents
// published at once and their PubAcks awaited together, one wake-up for
// the order links they stored, one seen mark; ack
// last still holds for each event, and an event whose intents failed fails
// (is retried) on its own. Whatever else the batch cannot finish (a failed
// merge, a lost write, a store that does not answer) is left Alone, and the
// pipeline hands it to Handle, one event at a time; redoing work is
// harmless, as merges are idempotent and intents deterministic.
func (h *Handler) HandleBatch(ctx context.Context, msgs []*consume.Msg) []consume.Outcome {
	parent := ctx // the store check that decides a failure's outcome outlives opTimeout
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	items := make([]batchItem, len(msgs))
	keys := make([]string, len(msgs))
	for i, m := range msgs {
		ev, key, err := h.decode(m)
		items[i], keys[i] = batchItem{msg: m, ev: ev, key: key, err: err}, key
	}
	outs := make([]consume.Outcome, len(msgs)) // Alone, until decided
	// What is merged, seen or not (a copy is folded), is known before the
	// seen check, so the check and the state read go in one round trip.
	var todo []*batchItem
	for i := range items {
		if it := &items[i]; it.err == nil && !parked(it.ev) {
			todo = append(todo, it)
		}
	}
	timed := make([]merge.Timed, len(todo))
	for i, it := range todo {
		timed[i] = merge.Timed{Event: it.ev, At: eventTimeOf(it.ev, it.msg)}
	}
	snap := store.NewSnapshot()
	orderNos, iccids := merge.Touches(timed)
	seen, err := h.store.SeenAndReadState(ctx, keys, snap, orderNos, iccids)
	if err != nil {
		h.log.Warn("batch seen check and read failed, events go one by one", "events", len(msgs), "err", err)
		return outs
	}
	for i := range items {
		it := &items[i]
		switch {
		case seen[i] && (it.err != nil || parked(it.ev)):
			outs[i] = consume.Ack(outcomeDuplicate).For(it.ev.Type.Token())
		case seen[i]:
			it.copy = true
		case it.err != nil:
			outs[i] = consume.Fail(consume.Permanent(it.err)).For(it.ev.Type.Token())
		case parked(it.ev):
			it.label = outcomeParked
		}
	}
	h.mergeBatch(ctx, todo, timed, snap)
	var mark []string
	for _, it := range items {
		if it.label != "" && !it.copy {
			mark = append(mark, it.key)
		}
	}
	if err := h.markSeenMany(ctx, mark); err != nil {
		// Not marked, so not acked here: Handle redoes them.
		h.log.Warn("batch seen mark failed, events go one by one", "events", len(mark), "err", err)
		return outs
	}
	for i, it := range items {
		if it.label == outcomeParked {
			h.park(it.ev, it.msg)
		}
		switch {
		case it.label != "":
			outs[i] = consume.Ack(it.label).For(it.ev.Type.Token())
		case it.failed != nil:
			outs[i] = h.outcome(parent, "", it.failed).For(it.ev.Type.Token())
		}
	}
	return outs
}

// mergeBatch merges the batch's events into snap, which holds what they
// touch (read with the seen check), with one compare-and-set write of every
// order and profile they change; then publishes all their intents at once,
// awaits the PubAcks together and labels applied the events it finished;
// see ADR 5. An event whose intents failed is marked failed, and holds back
// none of the others. An event whose order or profile another writer changed
// in between, or any event of a batch whose read or write failed, is left to
// Handle, which redoes it alone; the merges are idempotent, so what the
// batch did write is harmless to redo.
func (h *Handler) mergeBatch(ctx context.Context, todo []*batchItem, timed []merge.Timed, snap *store.Snapshot) {
	if len(todo) == 0 {
		return
	}
	var changed merge.Changed
	for round := 0; ; round++ {
		missing := merge.Fold(snap, timed, &changed)
		if missing.Empty() {
			break
		}
		if round == 2 {
			// Only an order whose stored profiles keep changing gets here.
			h.log.Warn("batch lacks state after three reads, events go one by one", "events", len(todo))
			return
		}
		if err := h.store.ReadState(ctx, snap, missing.Orders, missing.Profiles); err != nil {
			h.log.Warn("batch read failed, events go one by one", "events", len(todo), "err", err)
			return
		}
	}
	lost, err := h.store.WriteState(ctx, snap, slices.Collect(maps.Keys(changed.Orders)), slices.Collect(maps.Keys(changed.Profiles)))
	if err != nil {
		h.log.Warn("batch write failed, events go one by one", "events", len(todo), "err", err)
		return
	}
	h.metrics.batchLost.Add(float64(len(lost.Orders) + len(lost.Profiles)))
	type inFlight struct {
		it *batchItem
		s  sent
	}
	var flights []inFlight
	for i, it := range todo {
		if touchesLost(snap, it.ev, lost) {
			continue
		}
		if it.copy {
			it.label = outcomeDuplicate
			continue
		}
		var p store.Profile
		if v, ok := snap.Profiles[it.ev.ICCID]; ok && it.ev.Type != event.OrderStatus {
			p = v.Value // the batch's state: at least as late as the event's own
		}
		// In the event's own trace, which its intents carry on.
		flights = append(flights, inFlight{it, h.sendIntents(it.msg.Traced(ctx), it.ev, timed[i].At, p)})
	}
	var wake []string
	for _, f := range flights {
		if err := h.awaitIntents(ctx, f.s); err != nil {
			f.it.failed = err
			continue
		}
		f.it.label = outcomeApplied
		wake = linkKeys(wake, f.it.ev)
	}
	h.announce(wake)
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

func (h *Handler) markSeenMany(ctx context.Context, keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	return h.store.MarkSeenMany(ctx, keys)
}
