package notifier

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/esimflow/esimflow/notifier/channel"
	"github.com/esimflow/esimflow/shared/intent"
	"github.com/esimflow/esimflow/shared/store"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/trace"
)

// channelTries is how many transient failures one channel gets before the
// message moves on to the next: a channel whose API is down for longer
// should not keep the customer from hearing on another.
const channelTries = 5

// try is what one channel did with a message.
type try struct {
	delivered bool      // the channel has the message (now or before)
	gaveUp    error     // the channel is done with, undelivered: go on to the next
	err       error     // a transient failure: try this channel again later
	heldUntil time.Time // another instance holds the channel's claim until then
}

// sendFirst tries the targets in order until one takes the message: one
// message, however many channels it took (docs/design.md, "Channel
// fallback"). A channel is left for the next after a permanent failure, a
// timeout, or its channelTries-th transient failure; a transient failure
// before that ends the attempt, to retry the same channel after a backoff.
// Each channel's claim, "<intent id>/<channel>", marks the one that took the
// message sent, so no other channel is tried again, whichever instance
// retries; the claims of channels that failed are given back, so a later
// attempt (a retry, a re-drive from the dead letters) walks the order again.
// Exactly one channel delivers, except where a timed-out try did deliver
// after all — the price of moving on after a timeout, logged as such.
//
// When every channel was left, the message is dead-lettered at once if
// every failure was permanent, else retried.
//
// first, when not nil, tries the first target instead of tryOn: a batch
// claims its messages' first channels together, and may have tried one.
func (h *Handler) sendFirst(ctx context.Context, in intent.Intent, targets []Channel, msg channel.Message, first func(Channel) try) sends {
	var left []error
	permanent := true
	for i, ch := range targets {
		var t try
		if i == 0 && first != nil {
			t = first(ch)
		} else {
			t = h.tryOn(ctx, in, ch, msg, nil)
		}
		switch {
		case t.delivered:
			return sends{}
		case !t.heldUntil.IsZero():
			return sends{heldUntil: t.heldUntil}
		case t.err != nil:
			return sends{failures: []error{t.err}, retryAt: channel.RetryAfter(t.err)}
		}
		left = append(left, t.gaveUp)
		permanent = permanent && channel.IsPermanent(t.gaveUp)
	}
	return sends{failures: left, permanent: permanent}
}

// tryOn sends m on ch under the claim "<intent id>/<channel>".
func (h *Handler) tryOn(ctx context.Context, in intent.Intent, ch Channel, m channel.Message, marks *sentMark) try {
	id := channelClaim(in, ch)
	claim, err := h.store.Claim(ctx, id, h.owner, h.lease)
	if err != nil {
		return try{err: fmt.Errorf("claim %s: %w", id, err)}
	}
	return h.tryClaimed(ctx, in, ch, m, claim, marks)
}

// channelClaim is the id of in's claim on ch.
func channelClaim(in intent.Intent, ch Channel) string { return in.ID + "/" + ch.Name() }

// sentMark is what a delivery leaves to write: the channel's claim to mark
// sent, and its log entry.
type sentMark struct {
	claim string
	entry store.Notification
}

// tryClaimed is tryOn once the attempt to claim the channel answered.
func (h *Handler) tryClaimed(ctx context.Context, in intent.Intent, ch Channel, m channel.Message, claim store.Claim, marks *sentMark) try {
	id := channelClaim(in, ch)
	ctx, span := h.tracer.Start(ctx, "notifier send", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(attribute.String("esimflow.intent_id", in.ID), attribute.String("esimflow.channel", ch.Name())))
	defer span.End()
	switch {
	case claim.Outcome == store.AlreadyDone && claim.State == store.ClaimSent:
		return try{delivered: true}
	case claim.Outcome == store.AlreadyDone:
		// Suppressed: no channel claim is, but a final state is final.
		return try{gaveUp: channel.Permanent(fmt.Errorf("%s: claim %s", ch.Name(), claim.State))}
	case claim.Outcome == store.HeldByOther:
		return try{heldUntil: claim.LeaseUntil}
	}
	entry := store.Notification{ID: in.ID, Kind: string(in.Kind), ICCID: in.ICCID, Threshold: in.Threshold, TransactionID: in.TransactionID,
		Channel: ch.Name(), Attempt: claim.Attempt}
	if claim.Takeover {
		// The previous holder's lease ran out mid-send: the customer may have
		// this message already. The retry is logged apart, before it is made,
		// so that a second copy can always be told from a double send: when
		// the log cannot take the mark, no retry. The claim stays ours until
		// its lease ends, so the next attempt is a takeover again.
		unknown := entry
		unknown.Status, unknown.SentAt = store.NotificationRetriedUnknown, time.Now().UTC()
		if err := h.store.AppendNotification(ctx, unknown); err != nil {
			return try{err: fmt.Errorf("log %s as retried after an unknown outcome: %w", id, err)}
		}
		h.metrics.send(ch.Name(), store.NotificationRetriedUnknown)
	}
	sendCtx, cancel := context.WithTimeout(ctx, h.sendTimeout)
	err := ch.Send(sendCtx, m)
	cancel()
	entry.SentAt = time.Now().UTC()
	if err == nil && marks != nil {
		entry.Status = string(store.ClaimSent)
		*marks = sentMark{claim: id, entry: entry}
		return try{delivered: true}
	}
	if err == nil {
		if err := h.store.Finish(ctx, id, h.owner, store.ClaimSent); errors.Is(err, store.ErrNotOwner) {
			// Our lease ran out while sending and another instance took over;
			// it logs its own attempt. Ours still happened: record it.
			h.log.Warn("channel claim lost during send", "id", id)
		} else if err != nil {
			// Sent but not marked: the claim expires and the channel is retried
			// as an unknown outcome. Retrying the mark now narrows that window.
			return try{err: fmt.Errorf("mark %s sent: %w", id, err)}
		}
		entry.Status = string(store.ClaimSent)
		h.logEntry(ctx, entry)
		h.metrics.send(ch.Name(), "sent")
		return try{delivered: true}
	}
	err = fmt.Errorf("send %s on %s: %w", in.ID, ch.Name(), err)
	timedOut := ctx.Err() == nil && isTimeout(err)
	giveUp := channel.IsPermanent(err) || timedOut || claim.Attempt >= channelTries
	entry.Status, entry.Error = store.NotificationFailed, err.Error()
	switch {
	case timedOut:
		entry.Error += fmt.Sprintf(" (no answer within %v: it may have been delivered; moving on)", h.sendTimeout)
	case giveUp && !channel.IsPermanent(err):
		entry.Error += fmt.Sprintf(" (%d tries: moving on)", claim.Attempt)
	}
	h.logEntry(ctx, entry)
	h.metrics.send(ch.Name(), failure(err))
	if rerr := h.store.Release(ctx, id, h.owner); rerr != nil && !errors.Is(rerr, store.ErrNotOwner) {
		return try{err: errors.Join(err, fmt.Errorf("release %s: %w", id, rerr))}
	}
	if giveUp {
		return try{gaveUp: err}
	}
	return try{err: err}
}

// isTimeout reports whether err is a deadline or a network timeout.
func isTimeout(err error) bool {
	var ne net.Error
	return errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout())
}

func failure(err error) string {
	if channel.IsPermanent(err) {
		return "failed_permanent"
	}
	return "failed"
}
