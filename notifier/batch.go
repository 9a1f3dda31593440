package notifier

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/esimflow/esimflow/notifier/channel"
	"github.com/esimflow/esimflow/shared/consume"
	"github.com/esimflow/esimflow/shared/intent"
	"github.com/esimflow/esimflow/shared/store"
)

// batchItem is one intent of a batch and how far it got.
type batchItem struct {
	msg     *consume.Msg
	in      intent.Intent
	claim   store.Claim // the intent's
	targets []Channel
	message channel.Message
	sent    bool     // delivered: its marks are the batch's to write
	mark    sentMark // the channel claim and log entry, when this batch sent it
	// contact is the customer's, nil for none; found says the batch
	// looked it up where contacts.find would.
	contact *store.Contact
	found   bool
}

// HandleBatch decides a batch of intents together (a consume.BatchHandler),
// in a handful of store round trips for the whole batch where Handle makes
// about eight per intent (docs/adr/0015): the intents' claims in one, then
// the reads that decide whether each is due and to whom it goes (profiles,
// the claim states of the warnings it is ordered with, contacts) in one
// each, the first channel's claims in one; the sends, concurrently; then
// the channel claims marked sent, the log entries and the intents marked
// sent, in one each and in that order. Exactly once holds as in Handle:
// each intent and channel is claimed before its send and marked after it,
// under the same leases (docs/adr/0011).
//
// What is not plain — an intent another instance holds or that is done, a
// reason not to send it now (an ended eSIM, a higher or lower warning, no
// contact under its transactionId, an opt-out, quiet hours), a channel
// claim that is not a fresh one, a failed send — goes on alone, with the
// claims the batch took, through the same code as Handle; so does every
// claimed intent of a batch whose reads fail: the batch leaves it Alone
// and hands what is left of its work to Handle (handOn). A woken copy is
// left Alone before anything is claimed (Handle has its rules).
func (h *Handler) HandleBatch(ctx context.Context, msgs []*consume.Msg) []consume.Outcome {
	outs := make([]consume.Outcome, len(msgs)) // Alone, until decided
	var items []*batchItem
	var ids []string
	index := map[*batchItem]int{}
	for i, m := range msgs {
		if woken(m) {
			continue
		}
		in, err := intent.Decode(m.Data())
		if err != nil {
			outs[i] = consume.Fail(consume.Permanent(err))
			continue
		}
		it := &batchItem{msg: m, in: in}
		index[it] = i
		items, ids = append(items, it), append(ids, in.ID)
	}
	if len(items) == 0 {
		return outs
	}
	claims, err := h.store.ClaimMany(ctx, ids, h.owner, h.lease)
	if err != nil {
		for _, it := range items {
			outs[index[it]] = consume.Fail(fmt.Errorf("claim %s: %w", it.in.ID, err)).For(string(it.in.Kind))
		}
		return outs
	}
	var claimed []*batchItem
	for i, it := range items {
		it.claim = claims[i]
		switch claims[i].Outcome {
		case store.AlreadyDone:
			h.metrics.outcome(it.in.Kind, "already_done")
			outs[index[it]] = consume.Ack("already_done").For(string(it.in.Kind))
		case store.HeldByOther:
			outs[index[it]] = consume.Wait("held by another instance", leaseWait(claims[i].LeaseUntil, it.msg)).For(string(it.in.Kind))
		default:
			claimed = append(claimed, it)
		}
	}
	// From here each claimed item ends in the batch's marks or alone: left
	// Alone, with the rest of its work handed to Handle, which the pipeline
	// runs on it once the batch returns, and settles as soon as it is done
	// — a slow send does not hold the batch's other outcomes back.
	goAlone := func(it *batchItem, run func(ctx context.Context) consume.Outcome) {
		h.handOn(it.msg, run)
	}
	claimedAlone := func(it *batchItem) {
		goAlone(it, func(ctx context.Context) consume.Outcome {
			o, _ := h.claimed(ctx, it.in, it.claim, it.msg)
			return o
		})
	}
	plain := h.plain(ctx, claimed)
	var ready []*batchItem
	for _, it := range claimed {
		if plain[it] {
			ready = append(ready, it)
		} else {
			claimedAlone(it)
		}
	}
	h.sendBatch(ctx, ready, goAlone)
	var sent []*batchItem
	for _, it := range ready {
		if it.sent {
			sent = append(sent, it)
		}
	}
	for it, o := range h.markBatch(ctx, sent) {
		outs[index[it]] = o
	}
	return outs
}

// handOn leaves the rest of m's work to Handle (see HandleBatch).
func (h *Handler) handOn(m *consume.Msg, rest func(ctx context.Context) consume.Outcome) {
	h.rest.Store(m, rest)
}

// handedOn returns and forgets the work a batch handed on for m, if any.
func (h *Handler) handedOn(m *consume.Msg) (func(ctx context.Context) consume.Outcome, bool) {
	rest, ok := h.rest.LoadAndDelete(m)
	if !ok {
		return nil, false
	}
	return rest.(func(ctx context.Context) consume.Outcome), true
}

// plain reads what decides whether the claimed intents are due and to whom
// they go, and returns those with nothing to decide, rendered and routed:
// the eSIM not ended nor the warning's bundle or period replaced, no higher
// warning under way or out, no lower one in
// flight, a contact under the intent's transactionId, no opt-out and no
// quiet hours in the way; as due, preferences and render would find, from
// the same reads (endedBy, undisturbed). What it cannot read makes none plain.
func (h *Handler) plain(ctx context.Context, items []*batchItem) map[*batchItem]bool {
	if len(items) == 0 {
		return nil
	}
	var iccids, orders, txs, others []string
	for _, it := range items {
		iccids = append(iccids, it.in.ICCID)
		if it.in.TransactionID != "" {
			txs = append(txs, it.in.TransactionID)
		} else if it.in.OrderNo != "" {
			// The order's transactionId may be the way to its contact
			// (contacts.find): read with the profiles, in the same trip.
			orders = append(orders, it.in.OrderNo)
		}
		others = append(others, it.in.SupersededBy...)
		others = append(others, it.in.After...)
	}
	// Three reads, independent of each other: at once.
	snap := store.NewSnapshot()
	var states []store.ClaimState
	var contacts map[string]store.Contact
	others, txs = uniq(others), uniq(txs)
	var reads sync.WaitGroup
	var errs [3]error
	reads.Go(func() { errs[0] = h.store.ReadState(ctx, snap, uniq(orders), uniq(iccids)) })
	if len(others) > 0 {
		reads.Go(func() { states, errs[1] = h.store.ClaimStates(ctx, others) })
	}
	if len(txs) > 0 {
		reads.Go(func() { contacts, errs[2] = h.store.ContactMany(ctx, txs) })
	}
	reads.Wait()
	stateOf := make(map[string]store.ClaimState, len(others))
	for i, st := range states {
		stateOf[others[i]] = st
	}
	err := errors.Join(errs[:]...)
	if err == nil {
		err = h.contactsElsewhere(ctx, items, snap, contacts)
	}
	if err != nil {
		h.log.Warn("batch reads failed, intents go one by one", "intents", len(items), "err", err)
		return nil
	}
	out := map[*batchItem]bool{}
	for _, it := range items {
		in := it.in
		p := snap.Profiles[in.ICCID].Value
		if endedBy(in, p) != "" ||
			slices.ContainsFunc(in.SupersededBy, func(id string) bool { return stateOf[id] == store.ClaimHeld || stateOf[id] == store.ClaimSent }) ||
			slices.ContainsFunc(in.After, func(id string) bool { return stateOf[id] == store.ClaimHeld }) {
			continue
		}
		if !it.found {
			continue // found one by one (an order to read, a resolver)
		}
		c := it.contact
		if !h.undisturbed(in, c) {
			continue
		}
		targets, err := route(c, h.channels, h.order)
		if err != nil || len(targets) == 0 {
			continue
		}
		x := extras{topUpURL: h.topUpURL}
		if in.Kind == intent.Activation {
			x.install = p.Install
		}
		msg, err := render(h.templates, in, c, h.locale, x)
		if err != nil {
			continue
		}
		it.targets, it.message = targets, msg
		out[it] = true
	}
	return out
}

// undisturbed reports whether the customer's preferences and quiet hours
// let in go now (as preferences finds when it lets it go); c is nil when
// the customer has no contact.
func (h *Handler) undisturbed(in intent.Intent, c *store.Contact) bool {
	kind, err := templateKind(in)
	if err != nil {
		return false
	}
	if h.quiet.critical[string(kind)] {
		return true
	}
	return (c == nil || !slices.Contains(c.OptOut, string(kind))) && h.quiet.releaseAt(h.now(), h.quiet.location(c)).IsZero()
}

// contactsElsewhere sets each item's contact as contacts.find would find
// it, from byTx (the contacts under the intents' transactionIds) and, for
// the others, the ICCID index and the transactionId the profile or the
// intent's order in snap names — two more round trips for the batch, taken
// only when some intent has no contact under its own transactionId (events
// that carry none, as profile and usage events mostly do; a deployment
// whose channels need none: the console, a webhook). An item find would
// look up further for (an order only the profile names, the resolver) is
// left not found, to go on alone.
func (h *Handler) contactsElsewhere(ctx context.Context, items []*batchItem, snap *store.Snapshot, byTx map[string]store.Contact) error {
	var missing []*batchItem
	var iccids []string
	for _, it := range items {
		if c, ok := byTx[it.in.TransactionID]; ok && it.in.TransactionID != "" {
			it.contact, it.found = &c, true
			continue
		}
		missing = append(missing, it)
		iccids = append(iccids, it.in.ICCID)
	}
	if len(missing) == 0 || h.contacts.resolver != nil {
		return nil
	}
	byICCID, err := h.store.ContactManyByICCID(ctx, uniq(iccids))
	if err != nil {
		return err
	}
	var txs []string
	later := map[*batchItem]string{} // the profile's transactionId to look under
	for _, it := range missing {
		if c, ok := byICCID[it.in.ICCID]; ok {
			it.contact, it.found = &c, true
			continue
		}
		tx, ok := stateTx(it.in, snap)
		switch {
		case !ok:
			continue // an order the batch did not read: alone
		case tx == "":
			it.found = true // no contact anywhere
			continue
		}
		txs = append(txs, tx)
		later[it] = tx
	}
	if len(txs) == 0 {
		return nil
	}
	more, err := h.store.ContactMany(ctx, uniq(txs))
	if err != nil {
		return err
	}
	for it, tx := range later {
		if c, ok := more[tx]; ok {
			it.contact = &c
		}
		it.found = true
	}
	return nil
}

// stateTx is the transactionId contacts.find tries after the intent's own
// and the ICCID index, from the profile and order in snap: "" when it tries
// none; ok false when it would read an order snap does not hold (one the
// profile names and the intent does not).
func stateTx(in intent.Intent, snap *store.Snapshot) (tx string, ok bool) {
	if in.TransactionID != "" && in.OrderNo != "" {
		return "", true
	}
	p := snap.Profiles[in.ICCID].Value
	orderNo, t := orElse(in.OrderNo, p.OrderNo), orElse(in.TransactionID, p.TransactionID)
	if t == "" && orderNo != "" {
		o, read := snap.Orders[orderNo]
		if !read {
			return "", false
		}
		t = o.Value.TransactionID
	}
	if t == in.TransactionID {
		return "", true
	}
	return t, true
}

// sendBatch claims the first channel of each item in one round trip and
// sends on it, concurrently. A delivery is left to markBatch; anything
// else (a channel claim held, done or taken over, a failed send and the
// fallback to the next channels) goes on alone.
func (h *Handler) sendBatch(ctx context.Context, items []*batchItem, goAlone func(*batchItem, func(context.Context) consume.Outcome)) {
	if len(items) == 0 {
		return
	}
	ids := make([]string, len(items))
	for i, it := range items {
		ids[i] = channelClaim(it.in, it.targets[0])
	}
	claims, err := h.store.ClaimMany(ctx, ids, h.owner, h.lease)
	if err != nil {
		// Some channel claims may be ours now; unanswered, they run out into
		// takeovers, logged as retries after an unknown outcome, as a lost
		// answer to Claim is.
		for _, it := range items {
			goAlone(it, func(ctx context.Context) consume.Outcome {
				return consume.Fail(h.release(ctx, it.in, fmt.Errorf("claim %s: %w", channelClaim(it.in, it.targets[0]), err))).For(string(it.in.Kind))
			})
		}
		return
	}
	var sends sync.WaitGroup
	for i, it := range items {
		first := claims[i]
		if first.Outcome != store.Claimed || first.Takeover {
			goAlone(it, func(ctx context.Context) consume.Outcome {
				return h.sendAlone(ctx, it, func(ch Channel) try { return h.tryClaimed(ctx, it.in, ch, it.message, first, nil) })
			})
			continue
		}
		sends.Go(func() {
			ctx := it.msg.Traced(ctx)
			t := h.tryClaimed(ctx, it.in, it.targets[0], it.message, first, &it.mark)
			if t.delivered {
				it.sent = true
				return
			}
			// The try logged and released what it did; the next channels,
			// and the outcome, are the single path's, with this try as the
			// first channel's.
			goAlone(it, func(ctx context.Context) consume.Outcome {
				return h.sendAlone(ctx, it, func(Channel) try { return t })
			})
		})
	}
	sends.Wait()
}

// sendAlone tries item's channels in order as Handle does, the first one
// with its claim's answer taken already, or its try made, and concludes.
func (h *Handler) sendAlone(ctx context.Context, it *batchItem, first func(Channel) try) consume.Outcome {
	s := h.sendFirst(ctx, it.in, it.targets, it.message, first)
	return h.conclude(ctx, it.in, s, it.msg).For(string(it.in.Kind))
}

// markBatch writes what the batch's deliveries left: the channel claims
// marked sent, the log entries, the intents marked sent, in one round trip
// each and in the order Handle writes them. An intent whose mark the batch
// could not write is marked alone, as Handle would.
func (h *Handler) markBatch(ctx context.Context, items []*batchItem) map[*batchItem]consume.Outcome {
	outs := map[*batchItem]consume.Outcome{}
	if len(items) == 0 {
		return outs
	}
	ids := make([]string, len(items))
	states := make([]store.ClaimState, len(items))
	for i, it := range items {
		ids[i], states[i] = it.mark.claim, store.ClaimSent
	}
	errs, err := h.store.FinishMany(ctx, ids, h.owner, states)
	if err != nil {
		// As the single path does when a mark fails: it tries once more,
		// alone, and leaves the rest to the lease.
		h.log.Warn("batch channel marks failed, marking one by one", "intents", len(items), "err", err)
		for _, it := range items {
			outs[it] = h.markAlone(ctx, it)
		}
		return outs
	}
	var entries []store.Notification
	for i, it := range items {
		if errors.Is(errs[i], store.ErrNotOwner) {
			h.log.Warn("channel claim lost during send", "id", it.mark.claim)
		}
		entries = append(entries, it.mark.entry)
		h.metrics.send(it.mark.entry.Channel, "sent")
	}
	if err := h.store.AppendNotifications(ctx, entries); err != nil {
		h.log.Error("notification log append failed", "entries", len(entries), "err", err)
	}
	for i, it := range items {
		ids[i] = it.in.ID
	}
	if errs, err = h.store.FinishMany(ctx, ids, h.owner, states); err != nil {
		h.log.Warn("batch intent marks failed, marking one by one", "intents", len(items), "err", err)
		for _, it := range items {
			outs[it] = h.finish(ctx, it.in, nil, store.ClaimSent).For(string(it.in.Kind))
		}
		return outs
	}
	var wake []string
	for i, it := range items {
		if errors.Is(errs[i], store.ErrNotOwner) {
			h.log.Warn("claim lost during send", "id", it.in.ID)
		}
		if len(it.in.SupersededBy) > 0 {
			wake = append(wake, intent.WakeIntent(it.in.ID))
		}
		h.metrics.outcome(it.in.Kind, string(store.ClaimSent))
		outs[it] = consume.Ack(string(store.ClaimSent)).For(string(it.in.Kind))
	}
	h.wake.announce(wake...)
	return outs
}

// markAlone writes one delivery's marks as tryOn and finish do.
func (h *Handler) markAlone(ctx context.Context, it *batchItem) consume.Outcome {
	if err := h.store.Finish(ctx, it.mark.claim, h.owner, store.ClaimSent); errors.Is(err, store.ErrNotOwner) {
		h.log.Warn("channel claim lost during send", "id", it.mark.claim)
	} else if err != nil {
		err = fmt.Errorf("mark %s sent: %w", it.mark.claim, err)
		return consume.Fail(h.release(ctx, it.in, err)).For(string(it.in.Kind))
	}
	h.logEntry(ctx, it.mark.entry)
	h.metrics.send(it.mark.entry.Channel, "sent")
	return h.finish(ctx, it.in, nil, store.ClaimSent).For(string(it.in.Kind))
}

// uniq returns ids without repeats, in their first order.
func uniq(ids []string) []string {
	seen := make(map[string]bool, len(ids))
	out := ids[:0:0]
	for _, id := range ids {
		if !seen[id] {
			seen[id] = true
			out = append(out, id)
		}
	}
	return out
}
