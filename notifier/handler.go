package notifier

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"time"

	"github.com/esimflow/esimflow/notifier/channel"
	"github.com/esimflow/esimflow/shared/failpoint"
	"github.com/esimflow/esimflow/shared/intent"
	"github.com/esimflow/esimflow/shared/store"
	"github.com/esimflow/esimflow/shared/stream"
	"github.com/esimflow/esimflow/shared/telemetry"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// Handler sends the message of one intent.
type Handler struct {
	store       Store
	channels    map[string]Channel
	contacts    contacts
	templates   Renderer
	locale      string
	contactWait time.Duration
	pub         Publisher
	names       stream.Names
	owner       string
	lease       time.Duration
	maxDeliver  int
	metrics     *metrics
	tracer      trace.Tracer
	log         *slog.Logger
}

var errPermanent = errors.New("permanent")

// result is what processing an intent asks of its message.
type result struct {
	// wait > 0 with err nil: look again after wait (another holder, a lower
	// warning in flight, no contact yet); why says what for.
	wait time.Duration
	why  string
	// err: the attempt failed; retried after at least wait (what the channel
	// asked for), or dead-lettered when it wraps errPermanent.
	err error
}

// Handle runs one intent to its ack, delayed retry or dead letter.
func (h *Handler) Handle(ctx context.Context, msg jetstream.Msg) {
	meta, err := msg.Metadata()
	if err != nil {
		h.log.Error("message without metadata", "subject", msg.Subject(), "err", err)
		_ = msg.Term()
		return
	}
	res := h.process(ctx, msg, meta)
	last := meta.NumDelivered >= uint64(h.maxDeliver)
	switch {
	case res.err == nil && res.wait == 0:
		if err := msg.Ack(); err != nil {
			h.log.Warn("ack failed", "seq", meta.Sequence.Stream, "err", err)
		}
	case res.err == nil && !last:
		_ = msg.NakWithDelay(res.wait)
	case res.err == nil:
		// The server would not redeliver a NAK on the last delivery: the
		// wait ends here, in the dead letters, not in silence.
		h.toDeadLetters(ctx, msg, meta, fmt.Errorf("%w: deliveries exhausted while waiting (%s)", errPermanent, res.why))
	case errors.Is(res.err, errPermanent) || last:
		h.toDeadLetters(ctx, msg, meta, res.err)
	default:
		h.log.Warn("send failed, will retry", "seq", meta.Sequence.Stream, "deliveries", meta.NumDelivered, "err", res.err)
		_ = msg.NakWithDelay(max(retryDelay(meta.NumDelivered), res.wait))
	}
}

func (h *Handler) toDeadLetters(ctx context.Context, msg jetstream.Msg, meta *jetstream.MsgMetadata, cause error) {
	if err := h.deadLetter(ctx, msg, meta, cause); err != nil {
		h.log.Error("dead letter failed, will retry", "seq", meta.Sequence.Stream, "err", err)
		_ = msg.NakWithDelay(time.Minute)
		return
	}
	h.log.Warn("intent dead-lettered", "seq", meta.Sequence.Stream, "err", cause)
	var in intent.Intent
	if json.Unmarshal(msg.Data(), &in) == nil && in.ID != "" && in.ICCID != "" {
		h.logEntry(ctx, store.Notification{ID: in.ID, Kind: string(in.Kind), ICCID: in.ICCID, Threshold: in.Threshold,
			Status: "dead_lettered", Error: cause.Error(), SentAt: time.Now().UTC()})
		h.metrics.outcome(in.Kind, "dead_lettered")
	}
	_ = msg.Term()
}

// retryDelay spaces the retries of an intent: 1s, 2s, 4s … up to a minute.
func retryDelay(delivered uint64) time.Duration {
	return min(time.Second<<min(max(delivered, 1)-1, 6), time.Minute)
}

// process claims the intent, checks that it is still due, finds the contact,
// renders the message and sends it on each routed channel.
func (h *Handler) process(ctx context.Context, msg jetstream.Msg, meta *jetstream.MsgMetadata) result {
	// The span continues the trace of the webhook that caused the intent.
	ctx, span := h.tracer.Start(telemetry.Extract(ctx, msg.Headers()), "notifier intent", trace.WithSpanKind(trace.SpanKindConsumer))
	defer span.End()
	var in intent.Intent
	if err := json.Unmarshal(msg.Data(), &in); err != nil || in.ID == "" || in.ICCID == "" {
		return result{err: fmt.Errorf("%w: undecodable intent: %v", errPermanent, err)}
	}
	claim, err := h.store.Claim(ctx, in.ID, h.owner, h.lease)
	if err != nil {
		return result{err: fmt.Errorf("claim %s: %w", in.ID, err)}
	}
	switch claim.Outcome {
	case store.AlreadyDone:
		h.metrics.outcome(in.Kind, "already_done")
		return result{}
	case store.HeldByOther:
		// Usually the holder finishes within milliseconds: look again soon,
		// backing off, and at the latest when its lease ends.
		return result{wait: max(min(time.Until(claim.LeaseUntil), retryDelay(meta.NumDelivered)), 100*time.Millisecond),
			why: "held by another instance"}
	}

	// The intent's claim is ours until the lease ends; every path below
	// finishes or releases it.
	if stale, err := h.firstIn(ctx, in.SupersededBy, store.ClaimHeld, store.ClaimSent); err != nil {
		return result{err: h.release(ctx, in, err)}
	} else if stale != "" {
		entry := store.Notification{ID: in.ID, Kind: string(in.Kind), ICCID: in.ICCID, Threshold: in.Threshold,
			Attempt: claim.Attempt, Status: string(store.ClaimSuppressed), Error: "superseded by " + stale}
		return result{err: h.finish(ctx, in, &entry, store.ClaimSuppressed)}
	}
	if busy, err := h.firstIn(ctx, in.After, store.ClaimHeld); err != nil {
		return result{err: h.release(ctx, in, err)}
	} else if busy != "" {
		// A lower warning is in flight: let it go first (or be suppressed
		// because of this one), then send. Backing off: its holder may have
		// died mid-send, and then it stays held until its lease ends and its
		// redelivery takes it over — a minute, which waits of orderDelay
		// would outlast no delivery budget (found by the chaos suite).
		wait := orderDelay
		if meta.NumDelivered > 1 {
			wait = retryDelay(meta.NumDelivered - 1)
		}
		return result{wait: wait, why: "waiting for " + busy, err: h.release(ctx, in, nil)}
	}

	contact, err := h.contacts.find(ctx, in)
	if err != nil {
		return result{err: h.release(ctx, in, fmt.Errorf("find contact: %w", err))}
	}
	targets, err := route(contact, h.channels)
	switch {
	case errors.Is(err, errNoContact):
		if wait := h.contactWaitDelay(meta); wait > 0 {
			h.metrics.contactWaits.Inc()
			return result{wait: wait, why: "no contact yet", err: h.release(ctx, in, nil)}
		}
		return result{err: h.release(ctx, in, fmt.Errorf("%w: no contact for transactionId %q or iccid %s after %v",
			errPermanent, in.TransactionID, in.ICCID, time.Since(meta.Timestamp).Round(time.Second)))}
	case err != nil:
		return result{err: h.release(ctx, in, fmt.Errorf("%w: %w", errPermanent, err))}
	}
	m, err := render(h.templates, in, contact, h.locale)
	if err != nil {
		return result{err: h.release(ctx, in, fmt.Errorf("%w: render %s: %w", errPermanent, in.ID, err))}
	}

	// One claim per channel, "<intent id>/<channel>": a channel that took the
	// message is never sent to again, whichever instance retries the others.
	var (
		failures  []error
		permanent bool
		retryAt   time.Duration
		heldUntil time.Time
	)
	for _, ch := range targets {
		held, err := h.sendOn(ctx, in, ch, m)
		switch {
		case err != nil:
			failures = append(failures, err)
			permanent = permanent || channel.IsPermanent(err)
			retryAt = max(retryAt, channel.RetryAfter(err))
		case !held.IsZero() && (heldUntil.IsZero() || held.Before(heldUntil)):
			heldUntil = held
		}
	}
	switch {
	case len(failures) > 0 && permanent:
		return result{err: h.release(ctx, in, fmt.Errorf("%w: %w", errPermanent, errors.Join(failures...)))}
	case len(failures) > 0:
		return result{wait: retryAt, err: h.release(ctx, in, errors.Join(failures...))}
	case !heldUntil.IsZero():
		return result{wait: max(min(time.Until(heldUntil), retryDelay(meta.NumDelivered)), 100*time.Millisecond),
			why: "a channel is held by another instance", err: h.release(ctx, in, nil)}
	}
	return result{err: h.finish(ctx, in, nil, store.ClaimSent)}
}

// sendOn sends m on ch under the claim "<intent id>/<channel>". It returns
// when that claim's holder's lease ends if another instance holds it, and
// nil with a zero time when the channel has the message (now or before).
func (h *Handler) sendOn(ctx context.Context, in intent.Intent, ch Channel, m channel.Message) (time.Time, error) {
	id := in.ID + "/" + ch.Name()
	ctx, span := h.tracer.Start(ctx, "notifier send", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("esimflow.intent_id", in.ID), attribute.String("esimflow.channel", ch.Name())))
	defer span.End()
	claim, err := h.store.Claim(ctx, id, h.owner, h.lease)
	if failpoint.Enabled("bug-skip-claim") { // planted bug (chaos suite): breaks invariant 5
		claim, err = store.Claim{Outcome: store.Claimed, Attempt: 1}, nil
	}
	if err != nil {
		return time.Time{}, fmt.Errorf("claim %s: %w", id, err)
	}
	switch claim.Outcome {
	case store.AlreadyDone:
		return time.Time{}, nil
	case store.HeldByOther:
		return claim.LeaseUntil, nil
	}
	entry := store.Notification{ID: in.ID, Kind: string(in.Kind), ICCID: in.ICCID, Threshold: in.Threshold,
		Channel: ch.Name(), Attempt: claim.Attempt}
	if claim.Takeover {
		// The previous holder's lease ran out mid-send: the customer may have
		// this message already. Logged apart so it can be told from a double send.
		unknown := entry
		unknown.Status, unknown.SentAt = "retried_unknown", time.Now().UTC()
		h.logEntry(ctx, unknown)
		h.metrics.send(ch.Name(), "retried_unknown")
	}
	if failpoint.Enabled("bug-mark-first") { // planted bug (chaos suite): breaks invariant 5
		if err := h.store.Finish(ctx, id, h.owner, store.ClaimSent); err != nil {
			return time.Time{}, fmt.Errorf("mark %s sent: %w", id, err)
		}
		failpoint.Inject("after-mark")
	}
	sendCtx, cancel := context.WithTimeout(ctx, h.lease/2)
	err = ch.Send(sendCtx, m)
	cancel()
	if err == nil {
		failpoint.Inject("after-send")
	}
	entry.SentAt = time.Now().UTC()
	if err != nil {
		err = fmt.Errorf("send %s on %s: %w", in.ID, ch.Name(), err)
		entry.Status, entry.Error = "failed", err.Error()
		h.logEntry(ctx, entry)
		h.metrics.send(ch.Name(), failure(err))
		if rerr := h.store.Release(ctx, id, h.owner); rerr != nil && !errors.Is(rerr, store.ErrNotOwner) {
			err = errors.Join(err, fmt.Errorf("release %s: %w", id, rerr))
		}
		return time.Time{}, err
	}
	if err := h.store.Finish(ctx, id, h.owner, store.ClaimSent); errors.Is(err, store.ErrNotOwner) {
		// Our lease ran out while sending and another instance took over;
		// it logs its own attempt. Ours still happened: record it.
		h.log.Warn("channel claim lost during send", "id", id)
	} else if err != nil {
		// Sent but not marked: the claim expires and the channel is retried
		// as an unknown outcome. Retrying the mark now narrows that window.
		return time.Time{}, fmt.Errorf("mark %s sent: %w", id, err)
	}
	entry.Status = string(store.ClaimSent)
	h.logEntry(ctx, entry)
	h.metrics.send(ch.Name(), "sent")
	return time.Time{}, nil
}

func failure(err error) string {
	if channel.IsPermanent(err) {
		return "failed_permanent"
	}
	return "failed"
}

// contactWaitDelay is how long to wait before looking for the contact
// again; zero when the wait is over. The remaining window is spread over the
// deliveries left, so that the last one comes when the window has passed and
// can dead-letter the intent with the reason.
func (h *Handler) contactWaitDelay(meta *jetstream.MsgMetadata) time.Duration {
	remaining := h.contactWait - time.Since(meta.Timestamp)
	left := int64(h.maxDeliver) - int64(meta.NumDelivered)
	if remaining <= 0 || left <= 0 {
		return 0
	}
	return min(max(retryDelay(meta.NumDelivered), remaining/time.Duration(left)), remaining)
}

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

// finish records the intent's final state, and entry (when not nil) in the log.
func (h *Handler) finish(ctx context.Context, in intent.Intent, entry *store.Notification, state store.ClaimState) error {
	err := h.store.Finish(ctx, in.ID, h.owner, state)
	if errors.Is(err, store.ErrNotOwner) {
		// Our lease ran out and another instance took over; the channel
		// claims kept it from sending again.
		h.log.Warn("claim lost during send", "id", in.ID)
	} else if err != nil {
		// Not marked: the claim expires and the intent is looked at again;
		// its channel claims say what went out already.
		return fmt.Errorf("mark %s %s: %w", in.ID, state, err)
	}
	if entry != nil {
		entry.SentAt = time.Now().UTC()
		h.logEntry(ctx, *entry)
	}
	h.metrics.outcome(in.Kind, string(state))
	return nil
}

// release gives the claim back and returns cause (nil to retry without error).
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

func (h *Handler) deadLetter(ctx context.Context, msg jetstream.Msg, meta *jetstream.MsgMetadata, cause error) error {
	dl := nats.NewMsg(h.names.DLQSubject("notify"))
	dl.Data = msg.Data()
	dl.Header.Set(stream.HeaderError, cause.Error())
	dl.Header.Set(stream.HeaderSubject, msg.Subject())
	dl.Header.Set(stream.HeaderDeliveries, strconv.FormatUint(meta.NumDelivered, 10))
	dl.Header.Set(stream.HeaderSequence, strconv.FormatUint(meta.Sequence.Stream, 10))
	if _, err := h.pub.PublishMsg(ctx, dl, jetstream.WithMsgID("dlq:notify:"+strconv.FormatUint(meta.Sequence.Stream, 10))); err != nil {
		return fmt.Errorf("publish dead letter: %w", err)
	}
	return nil
}
