package ingest

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/esimflow/esimflow/shared/dedupe"
	"github.com/esimflow/esimflow/shared/event"
	"github.com/esimflow/esimflow/shared/httpjson"
	"github.com/esimflow/esimflow/shared/stream"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// retryAfter is what a 503 asks the provider to wait, in seconds.
const retryAfter = "5"

// Handler answers webhook requests.
type Handler struct {
	pub     Publisher
	names   stream.Names
	maxBody int64
	timeout time.Duration
	metrics *metrics
	log     *slog.Logger
}

var received = []byte(`{"received":true}` + "\n")

// Webhook stores one provider event and answers 200 only once JetStream has it.
func (h *Handler) Webhook(w http.ResponseWriter, r *http.Request) {
	now := time.Now().UTC()
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.maxBody))
	if err != nil {
		if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
			h.metrics.received(event.Unknown, outcomeTooLarge)
			httpjson.Error(w, http.StatusRequestEntityTooLarge, "body larger than "+strconv.FormatInt(h.maxBody, 10)+" bytes")
			return
		}
		h.metrics.received(event.Unknown, outcomeBadRequest)
		httpjson.Error(w, http.StatusBadRequest, "could not read body")
		return
	}

	ev, decodeErr := event.Decode(body)
	if errors.Is(decodeErr, event.ErrInvalidJSON) {
		h.metrics.received(event.Unknown, outcomeInvalid)
		h.reject(r.Context(), body, decodeErr, now)
		httpjson.Error(w, http.StatusBadRequest, "body is not valid JSON")
		return
	}
	// Anything else that is JSON is stored, malformed or not: the processor
	// judges it, and nothing the provider sent is lost.
	key := dedupe.Key(ev, decodeErr, body)
	msg := nats.NewMsg(h.names.EventSubject(ev.Type))
	msg.Data = body
	msg.Header.Set(stream.HeaderReceivedAt, now.Format(time.RFC3339Nano))
	msg.Header.Set(stream.HeaderDedupeKey, key)

	ctx, cancel := context.WithTimeout(r.Context(), h.timeout)
	defer cancel()
	ack, err := h.pub.PublishMsg(ctx, msg, jetstream.WithMsgID(key))
	h.metrics.publishSeconds.Observe(time.Since(now).Seconds())
	if err != nil {
		h.metrics.received(ev.Type, outcomeUnavailable)
		h.log.Warn("publish failed, answering 503", "type", ev.Type, "key", key, "err", err)
		w.Header().Set("Retry-After", retryAfter)
		httpjson.Error(w, http.StatusServiceUnavailable, "event store unavailable, retry later")
		return
	}
	outcome := outcomeStored
	if ack.Duplicate {
		outcome = outcomeDuplicate
	}
	h.metrics.received(ev.Type, outcome)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(received)
}

// reject keeps an invalid body in the bounded ESIM_REJECTED stream for
// debugging. It is best effort: the answer is 400 either way.
func (h *Handler) reject(ctx context.Context, body []byte, reason error, at time.Time) {
	msg := nats.NewMsg(h.names.RejectedSubject())
	msg.Data = body
	msg.Header.Set(stream.HeaderError, reason.Error())
	msg.Header.Set(stream.HeaderReceivedAt, at.Format(time.RFC3339Nano))
	ctx, cancel := context.WithTimeout(ctx, h.timeout)
	defer cancel()
	if _, err := h.pub.PublishMsg(ctx, msg); err != nil {
		h.log.Warn("could not keep rejected body", "err", err)
	}
}
