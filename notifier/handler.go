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

	"github.com/esimflow/esimflow/shared/intent"
	"github.com/esimflow/esimflow/shared/store"
	"github.com/esimflow/esimflow/shared/stream"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Handler sends the message of one intent.
type Handler struct {
	store      Store
	channel    Channel
	pub        Publisher
	names      stream.Names
	owner      string
	lease      time.Duration
	maxDeliver int
	metrics    *metrics
	log        *slog.Logger
}

var errPermanent = errors.New("permanent")

// Handle runs one intent to its ack, delayed retry or dead letter.
func (h *Handler) Handle(ctx context.Context, msg jetstream.Msg) {
	meta, err := msg.Metadata()
	if err != nil {
		h.log.Error("message without metadata", "subject", msg.Subject(), "err", err)
		_ = msg.Term()
		return
	}
	retryIn, err := h.process(ctx, msg)
	switch {
	case err == nil && retryIn == 0:
		if err := msg.Ack(); err != nil {
			h.log.Warn("ack failed", "seq", meta.Sequence.Stream, "err", err)
		}
	case err == nil:
		// Another instance holds the claim: look again when its lease ends.
		_ = msg.NakWithDelay(retryIn)
	case errors.Is(err, errPermanent) || meta.NumDelivered >= uint64(h.maxDeliver):
		if dlqErr := h.deadLetter(ctx, msg, meta, err); dlqErr != nil {
			h.log.Error("dead letter failed, will retry", "seq", meta.Sequence.Stream, "err", dlqErr)
			_ = msg.NakWithDelay(time.Minute)
			return
		}
		h.log.Warn("intent dead-lettered", "seq", meta.Sequence.Stream, "err", err)
		_ = msg.Term()
	default:
		h.log.Warn("send failed, will retry", "seq", meta.Sequence.Stream, "deliveries", meta.NumDelivered, "err", err)
		_ = msg.NakWithDelay(retryDelay(meta.NumDelivered))
	}
}

// retryDelay spaces the retries of an intent: 1s, 2s, 4s … up to a minute.
func retryDelay(delivered uint64) time.Duration {
	return min(time.Second<<min(max(delivered, 1)-1, 6), time.Minute)
}

// process returns a delay when the intent must be looked at again later.
func (h *Handler) process(ctx context.Context, msg jetstream.Msg) (time.Duration, error) {
	var in intent.Intent
	if err := json.Unmarshal(msg.Data(), &in); err != nil || in.ID == "" || in.ICCID == "" {
		return 0, fmt.Errorf("%w: undecodable intent: %v", errPermanent, err)
	}
	claim, err := h.store.Claim(ctx, in.ID, h.owner, h.lease)
	if err != nil {
		return 0, fmt.Errorf("claim %s: %w", in.ID, err)
	}
	switch claim.Outcome {
	case store.AlreadyDone:
		h.metrics.outcome(in.Kind, "already_done")
		return 0, nil
	case store.HeldByOther:
		// Usually the holder finishes within milliseconds: look again soon,
		// backing off, and at the latest when its lease ends.
		delivered := uint64(1)
		if meta, err := msg.Metadata(); err == nil {
			delivered = meta.NumDelivered
		}
		return max(min(time.Until(claim.LeaseUntil), retryDelay(delivered)), 100*time.Millisecond), nil
	}

	// The claim is ours until the lease ends; every path below finishes or
	// releases it.
	entry := store.Notification{ID: in.ID, Kind: string(in.Kind), ICCID: in.ICCID, Threshold: in.Threshold,
		Channel: h.channel.Name(), Attempt: claim.Attempt}
	if stale, err := h.firstIn(ctx, in.SupersededBy, store.ClaimHeld, store.ClaimSent); err != nil {
		return 0, h.release(ctx, in, err)
	} else if stale != "" {
		entry.Status, entry.Error = string(store.ClaimSuppressed), "superseded by "+stale
		return 0, h.finish(ctx, in, entry, store.ClaimSuppressed)
	}
	if busy, err := h.firstIn(ctx, in.After, store.ClaimHeld); err != nil {
		return 0, h.release(ctx, in, err)
	} else if busy != "" {
		// A lower warning is in flight: let it go first (or be suppressed
		// because of this one), then send.
		return orderDelay, h.release(ctx, in, nil)
	}
	if claim.Takeover {
		// The previous holder's lease ran out mid-send: the customer may have
		// this message already. Logged apart so it can be told from a double send.
		h.logEntry(ctx, store.Notification{ID: in.ID, Kind: string(in.Kind), ICCID: in.ICCID, Threshold: in.Threshold,
			Channel: h.channel.Name(), Attempt: claim.Attempt, Status: "retried_unknown", SentAt: time.Now().UTC()})
	}
	sendCtx, cancel := context.WithTimeout(ctx, h.lease/2)
	err = h.channel.Send(sendCtx, render(in))
	cancel()
	if err != nil {
		entry.Status, entry.Error, entry.SentAt = "failed", err.Error(), time.Now().UTC()
		h.logEntry(ctx, entry)
		h.metrics.outcome(in.Kind, "failed")
		return 0, h.release(ctx, in, fmt.Errorf("send %s on %s: %w", in.ID, h.channel.Name(), err))
	}
	entry.Status = string(store.ClaimSent)
	return 0, h.finish(ctx, in, entry, store.ClaimSent)
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

func (h *Handler) finish(ctx context.Context, in intent.Intent, entry store.Notification, state store.ClaimState) error {
	entry.SentAt = time.Now().UTC()
	err := h.store.Finish(ctx, in.ID, h.owner, state)
	if errors.Is(err, store.ErrNotOwner) {
		// Our lease ran out while sending and another instance took over; it
		// logs its own attempt. Ours still happened: record it.
		h.log.Warn("claim lost during send", "id", in.ID)
	} else if err != nil {
		// Sent but not marked: the claim expires and the id is retried as an
		// unknown outcome. Retrying the mark now narrows that window.
		return fmt.Errorf("mark %s %s: %w", in.ID, state, err)
	}
	h.logEntry(ctx, entry)
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
