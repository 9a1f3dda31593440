package notifier

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/esimflow/esimflow/notifier/channel"
	"github.com/esimflow/esimflow/shared/consume"
	"github.com/esimflow/esimflow/shared/event"
	"github.com/esimflow/esimflow/shared/intent"
	"github.com/esimflow/esimflow/shared/store"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"
)

// Handler decides what becomes of intents: it sends each intent's message
// and returns an outcome that the pipeline (shared/consume) settles.
type Handler struct {
	store       Store
	channels    map[string]Channel
	contacts    contacts
	templates   Renderer
	locale      string
	contactWait time.Duration
	order       []string      // channels to try, in order, for a contact that names none
	sendTimeout time.Duration // one channel's try; then the next (fallback.go)
	quiet       *quietHours   // quiet.go
	topUpURL    string        // the reseller's top-up link template (render.go)
	now         func() time.Time
	owner       string
	lease       time.Duration
	maxDeliver  int
	wake        *waker
	rest        sync.Map // *consume.Msg → what a batch left of its work (batch.go)
	metrics     *metrics
	tracer      trace.Tracer
	log         *slog.Logger
}

// Handle decides one intent (a consume.Handler): claim it, check that it is
// still due, find the contact, route and render, send on each routed channel,
// and turn what the sends did into an outcome.
func (h *Handler) Handle(ctx context.Context, m *consume.Msg) consume.Outcome {
	if rest, ok := h.handedOn(m); ok {
		return rest(ctx)
	}
	o, held := h.handle(ctx, m)
	if !woken(m) || o.Acked() {
		return o
	}
	if held && int(m.Meta.NumDelivered) < h.maxDeliver {
		// A wake-up's copy that found the intent held (its original, most
		// likely, about to park it again): it looks again shortly, or the
		// wake-up it carries would be lost.
		return consume.Wait("held by another instance", orderDelay).For(o.Type)
	}
	// A wake-up's copy has done what it could: the original retries (or
	// dead-letters) on its own schedule, and it re-parked the intent if it
	// still waits.
	return consume.Ack("woken_copy").For(o.Type)
}

// handle is Handle for any message; held reports that the outcome waits
// for a claim another instance holds.
func (h *Handler) handle(ctx context.Context, m *consume.Msg) (o consume.Outcome, held bool) {
	in, err := intent.Decode(m.Data())
	if err != nil {
		return consume.Fail(consume.Permanent(err)), false
	}
	claim, o, ok := h.claim(ctx, in, m)
	if !ok {
		return o.For(string(in.Kind)), claim.Outcome == store.HeldByOther
	}
	return h.claimed(ctx, in, claim, m)
}

// claimed is handle once the intent's claim is taken: the claim is ours
// until the lease ends, and every path below finishes or releases it. A
// batch (batch.go) hands on here the intents it claimed but cannot finish.
func (h *Handler) claimed(ctx context.Context, in intent.Intent, claim store.Claim, m *consume.Msg) (o consume.Outcome, held bool) {
	if o, ok := h.due(ctx, in, claim, m); !ok {
		return o.For(string(in.Kind)), false
	}
	targets, msg, o, ok := h.prepare(ctx, in, m)
	if !ok {
		return o.For(string(in.Kind)), false
	}
	s := h.sendFirst(ctx, in, targets, msg, nil)
	return h.conclude(ctx, in, s, m).For(string(in.Kind)), len(s.failures) == 0 && !s.heldUntil.IsZero()
}

// claim takes the intent's claim, or says why not: another instance holds
// it, or it is done already.
func (h *Handler) claim(ctx context.Context, in intent.Intent, m *consume.Msg) (store.Claim, consume.Outcome, bool) {
	claim, err := h.store.Claim(ctx, in.ID, h.owner, h.lease)
	if err != nil {
		return claim, consume.Fail(fmt.Errorf("claim %s: %w", in.ID, err)), false
	}
	switch claim.Outcome {
	case store.AlreadyDone:
		h.metrics.outcome(in.Kind, "already_done")
		return claim, consume.Ack("already_done"), false
	case store.HeldByOther:
		// Usually the holder finishes within milliseconds: look again soon,
		// backing off, and at the latest when its lease ends.
		return claim, consume.Wait("held by another instance", leaseWait(claim.LeaseUntil, m)), false
	}
	return claim, consume.Outcome{}, true
}

// ended says why in's message is no longer to be sent, from its profile
// now: its eSIM is terminal (event.Terminal), or the bundle or period a
// warning is about was replaced (intent.Replaced); "" when it still is.
// The processor publishes every intent its events' evidence asks for,
// whatever arrives later (docs/design.md, "Messages"); whether the
// customer of a cancelled or released eSIM, or of a topped-up bundle, is
// still to be told is decided here, when the message is due (issue 14,
// case 6; issue 16).
func (h *Handler) ended(ctx context.Context, in intent.Intent) (string, error) {
	p, err := h.store.Profile(ctx, in.ICCID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return "", nil
	case err != nil:
		return "", fmt.Errorf("profile %s: %w", in.ICCID, err)
	}
	return endedBy(in, p), nil
}

// endedBy is ended's answer from the profile p (a batch reads its profiles
// together).
func endedBy(in intent.Intent, p store.Profile) string {
	if event.Terminal(p.Status) {
		return "eSIM " + p.Status
	}
	if what := intent.Replaced(in, p); what != "" {
		return "superseded by " + what
	}
	return ""
}

// leaseWait is how long to wait for a claim another instance holds until.
func leaseWait(until time.Time, m *consume.Msg) time.Duration {
	return max(min(time.Until(until), consume.Backoff(m.Meta.NumDelivered)), 100*time.Millisecond)
}

// due checks that the claimed intent is still to be sent: its eSIM not
// ended (then it is suppressed), not superseded by a higher warning (then
// it is suppressed too), and not ahead of a lower one in flight (then it
// waits).
func (h *Handler) due(ctx context.Context, in intent.Intent, claim store.Claim, m *consume.Msg) (consume.Outcome, bool) {
	if why, err := h.ended(ctx, in); err != nil {
		return consume.Fail(h.release(ctx, in, err)), false
	} else if why != "" {
		entry := store.Notification{ID: in.ID, Kind: string(in.Kind), ICCID: in.ICCID, Threshold: in.Threshold, TransactionID: in.TransactionID,
			Attempt: claim.Attempt, Status: string(store.ClaimSuppressed), Error: why}
		return h.finish(ctx, in, &entry, store.ClaimSuppressed), false
	}
	if stale, err := h.firstIn(ctx, in.SupersededBy, store.ClaimHeld, store.ClaimSent); err != nil {
		return consume.Fail(h.release(ctx, in, err)), false
	} else if stale != "" {
		entry := store.Notification{ID: in.ID, Kind: string(in.Kind), ICCID: in.ICCID, Threshold: in.Threshold, TransactionID: in.TransactionID,
			Attempt: claim.Attempt, Status: string(store.ClaimSuppressed), Error: "superseded by " + stale}
		return h.finish(ctx, in, &entry, store.ClaimSuppressed), false
	}
	busy, err := h.firstIn(ctx, in.After, store.ClaimHeld)
	if err == nil && busy != "" {
		busy, err = h.unlessHeldForQuiet(ctx, in, busy)
	}
	if err == nil && busy != "" && h.wake.enabled() {
		// Parked first, then looked again (see prepare).
		h.wake.park(ctx, in, m, intent.WakeIntent(busy))
		if busy, err = h.firstIn(ctx, in.After, store.ClaimHeld); err == nil && busy != "" {
			busy, err = h.unlessHeldForQuiet(ctx, in, busy)
		}
	}
	if err != nil {
		return consume.Fail(h.release(ctx, in, err)), false
	} else if busy != "" {
		// A lower warning is in flight: let it go first (or be suppressed
		// because of this one), then send. Its end wakes this one (parked
		// under it). Until then the waits grow as a contact wait's, up to a
		// minute: the lower one may itself wait for the contact both need,
		// or its holder may have died mid-send and hold it until its lease
		// ends and its redelivery takes it over — which fixed short waits
		// would outlast no delivery budget (found by the chaos suite; issue
		// 16, case 2). Should this one's deliveries run out first, its
		// parked entry still wakes it when the lower one ends.
		wait := orderDelay
		if m.Meta.NumDelivered > 1 {
			wait = min(max(h.contactWaitDelay(m.Meta), consume.Backoff(m.Meta.NumDelivered-1)), time.Minute)
		}
		return h.waitReleasing(ctx, in, "waiting for "+busy, wait), false
	}
	return consume.Outcome{}, true
}

// prepare finds the contact, the channels to send on and the message.
func (h *Handler) prepare(ctx context.Context, in intent.Intent, m *consume.Msg) ([]Channel, channel.Message, consume.Outcome, bool) {
	contact, err := h.contacts.find(ctx, in)
	if err != nil {
		return nil, channel.Message{}, consume.Fail(h.release(ctx, in, fmt.Errorf("find contact: %w", err))), false
	}
	targets, err := route(contact, h.channels, h.order)
	if errors.Is(err, errNoContact) && h.wake.enabled() {
		// Parked first, then looked again: a contact or link stored before
		// the park is found now, and one stored after it is announced after
		// it too, and wakes the parked message. The other order would lose
		// a wake-up that came between the look and the park.
		h.wake.park(ctx, in, m, waitKeys(in)...)
		if contact, err = h.contacts.find(ctx, in); err != nil {
			return nil, channel.Message{}, consume.Fail(h.release(ctx, in, fmt.Errorf("find contact: %w", err))), false
		}
		targets, err = route(contact, h.channels, h.order)
	}
	switch {
	case errors.Is(err, errNoContact):
		if wait := h.contactWaitDelay(m.Meta); wait > 0 {
			h.metrics.contactWaits.Inc()
			h.logWaiting(ctx, in, fmt.Sprintf("no contact for transactionId %q or iccid %s yet: waiting up to %v", in.TransactionID, in.ICCID, h.contactWait))
			return nil, channel.Message{}, h.waitReleasing(ctx, in, "no contact yet", wait), false
		}
		return nil, channel.Message{}, consume.Fail(h.release(ctx, in, consume.Permanent(fmt.Errorf("no contact for transactionId %q or iccid %s after %v",
			in.TransactionID, in.ICCID, time.Since(m.Meta.Timestamp).Round(time.Second))))), false
	case err != nil:
		return nil, channel.Message{}, consume.Fail(h.release(ctx, in, consume.Permanent(err))), false
	}
	if o, ok := h.preferences(ctx, in, contact, m); !ok {
		return nil, channel.Message{}, o, false
	}
	x, err := h.extras(ctx, in)
	if err != nil {
		return nil, channel.Message{}, consume.Fail(h.release(ctx, in, err)), false
	}
	msg, err := render(h.templates, in, contact, h.locale, x)
	if err != nil {
		return nil, channel.Message{}, consume.Fail(h.release(ctx, in, consume.Permanent(fmt.Errorf("render %s: %w", in.ID, err)))), false
	}
	return targets, msg, consume.Outcome{}, true
}

// sends is what trying the routed channels did (fallback.go).
type sends struct {
	failures  []error
	permanent bool          // a failure no retry can fix
	retryAt   time.Duration // the longest wait a failed channel asked for
	heldUntil time.Time     // the earliest lease end of a channel another instance holds
}

// conclude marks the intent sent, or releases it to be retried.
func (h *Handler) conclude(ctx context.Context, in intent.Intent, s sends, m *consume.Msg) consume.Outcome {
	switch {
	case len(s.failures) > 0 && s.permanent:
		return consume.Fail(h.release(ctx, in, consume.Permanent(errors.Join(s.failures...))))
	case len(s.failures) > 0:
		return consume.Fail(h.release(ctx, in, errors.Join(s.failures...))).After(s.retryAt)
	case !s.heldUntil.IsZero():
		return h.waitReleasing(ctx, in, "a channel is held by another instance", leaseWait(s.heldUntil, m))
	}
	return h.finish(ctx, in, nil, store.ClaimSent)
}

// waitKeys are what a message without a contact waits for: a contact under
// its transactionId, or one listing its iccid or reached through the iccid's
// order link.
func waitKeys(in intent.Intent) []string {
	keys := []string{intent.WakeICCID(in.ICCID)}
	if in.TransactionID != "" {
		keys = append(keys, intent.WakeTx(in.TransactionID))
	}
	return keys
}

// contactWaitDelay is how long to wait before looking for the contact
// again; zero when the wait is over. The waits grow by contactWaitFactor from
// contactWaitFirst, for what no wake-up announces (a contact the resolver
// finds, a lost wake-up); and never less than the growing series needs for
// the deliveries left to cover the remaining window, so that the last one
// comes when the window has passed and can dead-letter the intent with the
// reason.
func (h *Handler) contactWaitDelay(meta *jetstream.MsgMetadata) time.Duration {
	return contactWaitDelay(h.contactWait-time.Since(meta.Timestamp), meta.NumDelivered, h.maxDeliver)
}

func contactWaitDelay(remaining time.Duration, delivered uint64, maxDeliver int) time.Duration {
	left := int64(maxDeliver) - int64(delivered)
	if remaining <= 0 || left <= 0 {
		return 0
	}
	grown := float64(contactWaitFirst) * math.Pow(contactWaitFactor, float64(max(delivered, 1)-1))
	// d + fd + f²d + … (left terms) = remaining
	needed := float64(remaining) * (contactWaitFactor - 1) / (math.Pow(contactWaitFactor, float64(left)) - 1)
	return min(time.Duration(max(grown, needed)), remaining)
}

// The contact wait's retries: the first within a second, each next one
// three times as long.
const (
	contactWaitFirst  = 500 * time.Millisecond
	contactWaitFactor = 3.0
)

// orderDelay is how soon an intent waiting for a lower one looks again.
const orderDelay = 200 * time.Millisecond

// firstIn returns the first of ids whose claim is in one of states.
func (h *Handler) firstIn(ctx context.Context, ids []string, states ...store.ClaimState) (string, error) {
	for _, id := range ids {
		st, err := h.store.ClaimState(ctx, id)
		if err != nil {
			return "", fmt.Errorf("claim state %s: %w", id, err)
		}
		if slices.Contains(states, st) {
			return id, nil
		}
	}
	return "", nil
}

// finish records the intent's final state, and entry (when not nil) in the
// log: done, to be acked.
func (h *Handler) finish(ctx context.Context, in intent.Intent, entry *store.Notification, state store.ClaimState) consume.Outcome {
	err := h.store.Finish(ctx, in.ID, h.owner, state)
	if errors.Is(err, store.ErrNotOwner) {
		// Our lease ran out and another instance took over; the channel
		// claims kept it from sending again.
		h.log.Warn("claim lost during send", "id", in.ID)
	} else if err != nil {
		// Not marked: the claim expires and the intent is looked at again;
		// its channel claims say what went out already.
		return consume.Fail(fmt.Errorf("mark %s %s: %w", in.ID, state, err))
	}
	if entry != nil {
		entry.SentAt = time.Now().UTC()
		h.logEntry(ctx, *entry)
	}
	h.releaseHigher(in)
	h.metrics.outcome(in.Kind, string(state))
	return consume.Ack(string(state))
}

// waitReleasing gives the claim back to wait for why; a claim that could not
// be given back makes it a failure, retried after at least the wait.
func (h *Handler) waitReleasing(ctx context.Context, in intent.Intent, why string, wait time.Duration) consume.Outcome {
	if err := h.release(ctx, in, nil); err != nil {
		return consume.Fail(err).After(wait)
	}
	return consume.Wait(why, wait)
}

// release gives the claim back and returns cause, joined with the release's
// failure if any.
func (h *Handler) release(ctx context.Context, in intent.Intent, cause error) error {
	if err := h.store.Release(ctx, in.ID, h.owner); err != nil && !errors.Is(err, store.ErrNotOwner) {
		return errors.Join(cause, fmt.Errorf("release %s: %w", in.ID, err))
	}
	return cause
}

// logEntry appends to the notification log. The log is a record, not a guard:
// a failed append is reported and the message's fate stands.
func (h *Handler) logEntry(ctx context.Context, n store.Notification) {
	if err := h.store.AppendNotification(ctx, n); err != nil {
		h.log.Error("notification log append failed", "id", n.ID, "status", n.Status, "err", err)
	}
}

// logWaiting logs that the intent waits, and why, once per wait: not when
// its latest entry already says the same (a wait spans several deliveries).
func (h *Handler) logWaiting(ctx context.Context, in intent.Intent, why string) {
	log, err := h.store.Notifications(ctx, in.ICCID)
	if err != nil {
		h.log.Error("notification log read failed", "id", in.ID, "err", err)
		return
	}
	for i := len(log) - 1; i >= 0; i-- {
		if log[i].ID == in.ID {
			if log[i].Status == store.NotificationWaiting && log[i].Error == why {
				return
			}
			break
		}
	}
	h.logEntry(ctx, store.Notification{ID: in.ID, Kind: string(in.Kind), ICCID: in.ICCID, Threshold: in.Threshold, TransactionID: in.TransactionID,
		Status: store.NotificationWaiting, Error: why, SentAt: time.Now().UTC()})
}

// observe records a dead-lettered intent in the notification log.
func (h *Handler) observe(ctx context.Context, m *consume.Msg, s consume.Settled) {
	if s.Result != consume.ResultDeadLetter {
		return
	}
	if in, err := intent.Decode(m.Data()); err == nil {
		h.logEntry(ctx, store.Notification{ID: in.ID, Kind: string(in.Kind), ICCID: in.ICCID, Threshold: in.Threshold, TransactionID: in.TransactionID,
			Status: "dead_lettered", Error: s.Err.Error(), SentAt: time.Now().UTC()})
		h.abandon(ctx, in)
		h.metrics.outcome(in.Kind, "dead_lettered")
	}
}

// abandon marks a dead-lettered intent's claim so: a higher warning waiting
// for it (After) goes out now instead of waiting for a message that will not
// come, and a re-drive of either is enough (issue 16, case 2). A claim that
// another holds (a re-drive already at work) or that is final is left as it
// is. Failing here leaves the claim released, as before: the higher warning
// waits, and the dead letter's re-drive still sends.
func (h *Handler) abandon(ctx context.Context, in intent.Intent) {
	c, err := h.store.Claim(ctx, in.ID, h.owner, h.lease)
	if err == nil && c.Outcome == store.Claimed {
		err = h.store.Finish(ctx, in.ID, h.owner, store.ClaimDeadLettered)
	}
	if err != nil {
		h.log.Error("mark dead-lettered intent", "id", in.ID, "err", err)
		return
	}
	h.releaseHigher(in)
}

// releaseHigher wakes the higher warnings that may wait for in (those that
// supersede it are ordered after it), now that it is done with.
func (h *Handler) releaseHigher(in intent.Intent) {
	if len(in.SupersededBy) > 0 {
		h.wake.announce(intent.WakeIntent(in.ID))
	}
}

// deadLetterKind names ESIM_NOTIFY in dead-letter subjects and ids.
const deadLetterKind = "notify"
