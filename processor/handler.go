package processor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/esimflow/esimflow/processor/merge"
	"github.com/esimflow/esimflow/shared/dedupe"
	"github.com/esimflow/esimflow/shared/event"
	"github.com/esimflow/esimflow/shared/failpoint"
	"github.com/esimflow/esimflow/shared/intent"
	"github.com/esimflow/esimflow/shared/stream"
	"github.com/esimflow/esimflow/shared/telemetry"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"
)

// opTimeout bounds one event's work: well inside the consumer's AckWait, so a
// hung store call turns into a retry rather than a duplicate delivery.
const opTimeout = 10 * time.Second

// Handler processes one event message.
type Handler struct {
	store      Store
	pub        Publisher
	names      stream.Names
	rules      intent.Rules
	maxDeliver int
	metrics    *metrics
	parked     *parkedLog
	tracer     trace.Tracer
	log        *slog.Logger
}

// errPermanent marks failures redelivery cannot fix.
var errPermanent = errors.New("permanent")

// Outcomes of one event, the values of the outcome label.
const (
	outcomeApplied   = "applied"
	outcomeDuplicate = "duplicate"
	outcomeParked    = "parked" // unknown type or health check: counted, kept in the stream, not merged
	outcomeDead      = "dead_letter"
	outcomeRetry     = "retry"
)

// Handle runs one message to its ack, nak or dead letter. stop ends the wait
// for a store that is down (the service is shutting down).
func (h *Handler) Handle(ctx context.Context, stop <-chan struct{}, msg jetstream.Msg) {
	meta, err := msg.Metadata()
	if err != nil {
		h.log.Error("message without metadata", "subject", msg.Subject(), "err", err)
		_ = msg.Term()
		return
	}
	if failpoint.Enabled("bug-ack-first") { // planted bug (chaos suite): breaks invariant 4
		_ = msg.Ack()
	}
	var (
		ev      event.Event
		outcome string
	)
	for {
		ev, outcome, err = h.attempt(ctx, msg)
		// A store outage is not the event's fault: hold the event, without
		// spending its deliveries, until the store answers again — rather
		// than dead-letter everything in flight during a long outage.
		if err == nil || errors.Is(err, errPermanent) || !h.holdWhileStoreDown(ctx, stop, msg, meta) {
			break
		}
	}
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	switch {
	case err == nil:
		failpoint.Inject("after-seen-mark")
		if err := msg.Ack(); err != nil {
			// The effects are stored; a redelivery finds the key seen.
			h.log.Warn("ack failed", "seq", meta.Sequence.Stream, "err", err)
		}
	case errors.Is(err, errPermanent) || meta.NumDelivered >= uint64(h.maxDeliver):
		outcome = outcomeDead
		if dlqErr := h.deadLetter(ctx, msg, meta, err); dlqErr != nil {
			// Not stored as a dead letter: leave it to redelivery rather than
			// lose it (on the last delivery the max-deliveries advisory
			// listener writes the dead letter).
			h.log.Error("dead letter failed, will retry", "seq", meta.Sequence.Stream, "err", dlqErr)
			_ = msg.NakWithDelay(nakDelay(meta.NumDelivered))
			outcome = outcomeRetry
			break
		}
		h.log.Warn("event dead-lettered", "seq", meta.Sequence.Stream, "subject", msg.Subject(), "deliveries", meta.NumDelivered, "err", err)
		_ = msg.Term()
	default:
		outcome = outcomeRetry
		h.log.Warn("event failed, will retry", "seq", meta.Sequence.Stream, "deliveries", meta.NumDelivered, "err", err)
		_ = msg.NakWithDelay(nakDelay(meta.NumDelivered))
	}
	h.metrics.processed.WithLabelValues(ev.Type.Token(), outcome).Inc()
	if outcome == outcomeParked {
		h.parked.add(ev.Type, meta.Sequence.Stream)
		h.metrics.parked.WithLabelValues(ev.Type.Token()).Inc()
	}
}

func (h *Handler) attempt(ctx context.Context, msg jetstream.Msg) (event.Event, string, error) {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	return h.process(ctx, msg)
}

// holdWhileStoreDown waits while the store does not answer, telling the
// server the event is still being worked on, and reports whether it waited
// (the caller then tries the event again). It returns false at once when the
// store answers — the failure was something else — and when stop closes.
func (h *Handler) holdWhileStoreDown(ctx context.Context, stop <-chan struct{}, msg jetstream.Msg, meta *jetstream.MsgMetadata) bool {
	if h.storeUp(ctx) {
		return false
	}
	h.log.Warn("store down, holding event until it answers", "seq", meta.Sequence.Stream)
	// At once: the failed attempts may have used much of AckWait already.
	_ = msg.InProgress()
	wait, lastProgress := 250*time.Millisecond, time.Now()
	for {
		t := time.NewTimer(wait)
		select {
		case <-stop:
			t.Stop()
			return false
		case <-t.C:
		}
		if h.storeUp(ctx) {
			return true
		}
		// Well inside AckWait, so the server does not hand the event to
		// another instance (and count a delivery) while it is held here.
		if time.Since(lastProgress) > stream.AckWait/3 {
			_ = msg.InProgress()
			lastProgress = time.Now()
		}
		wait = min(2*wait, 2*time.Second)
	}
}

func (h *Handler) storeUp(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	return h.store.Ping(ctx) == nil
}

// process does everything but the ack, in the order invariant 4 requires.
func (h *Handler) process(ctx context.Context, msg jetstream.Msg) (event.Event, string, error) {
	ev, key, decodeErr := decode(msg)
	if seen, err := h.store.Seen(ctx, key); err != nil {
		return ev, "", fmt.Errorf("seen %s: %w", key, err)
	} else if seen {
		return ev, outcomeDuplicate, nil
	}
	if decodeErr != nil {
		return ev, "", fmt.Errorf("%w: %w", errPermanent, decodeErr)
	}
	if parked(ev) {
		h.log.Info("event parked", "type", ev.Type, "subject", msg.Subject())
		return ev, outcomeParked, h.markSeen(ctx, key)
	}
	if failpoint.Enabled("bug-seen-first") { // planted bug (chaos suite): breaks invariant 4
		if err := h.markSeen(ctx, key); err != nil {
			return ev, "", err
		}
	}
	if err := h.apply(ctx, ev, msg); err != nil {
		return ev, "", err
	}
	return ev, outcomeApplied, h.markSeen(ctx, key)
}

// decode reads an event and its dedupe key (ingest's header, else derived).
func decode(msg jetstream.Msg) (event.Event, string, error) {
	ev, decodeErr := event.Decode(msg.Data())
	key := stream.DedupeKey(msg.Headers())
	if key == "" {
		key = dedupe.Key(ev, decodeErr, msg.Data())
	}
	return ev, key, decodeErr
}

// parked reports whether an event is parked rather than merged.
func parked(ev event.Event) bool { return ev.Type == event.Unknown || ev.Type == event.CheckHealth }

// apply merges an event into the store and publishes its intents, in a span
// that continues the webhook request's trace (carried in the headers) and
// hands it on to the intents. Both loops, one at a time and batched, come here.
func (h *Handler) apply(ctx context.Context, ev event.Event, msg jetstream.Msg) error {
	at := h.eventTimeOf(ev, msg)
	if failpoint.Enabled("bug-dead-letter-usage") && ev.Type == event.DataUsage && ev.UsagePercent < 80 {
		return fmt.Errorf("%w: planted bug (chaos suite)", errPermanent)
	}
	if err := merge.Apply(ctx, h.store, ev, at); err != nil {
		return err
	}
	failpoint.Inject("after-store-write")
	return h.publishIntents(ctx, ev, at, msg)
}

// publishIntents publishes what a merged event asks the notifier to send, in
// a span that continues the webhook request's trace (carried in the headers)
// and hands it on to the intents. Both loops, one at a time and batched, come
// here once the event's merge is stored.
func (h *Handler) publishIntents(ctx context.Context, ev event.Event, at time.Time, msg jetstream.Msg) error {
	ctx, span := h.tracer.Start(telemetry.Extract(ctx, msg.Headers()), "processor event", trace.WithSpanKind(trace.SpanKindConsumer))
	defer span.End()
	for _, in := range intent.For(ev, at, h.rules) {
		if err := h.publishIntent(ctx, in); err != nil {
			return err
		}
		failpoint.Inject("after-intent-puback")
	}
	return nil
}

// eventTimeOf is when an event takes effect: see eventTime.
func (h *Handler) eventTimeOf(ev event.Event, msg jetstream.Msg) time.Time {
	var stored time.Time
	if meta, err := msg.Metadata(); err == nil {
		stored = meta.Timestamp
	}
	return eventTime(ev, msg.Headers().Get(stream.HeaderReceivedAt), stored)
}

func (h *Handler) markSeen(ctx context.Context, key string) error {
	if err := h.store.MarkSeen(ctx, key); err != nil {
		return fmt.Errorf("mark seen %s: %w", key, err)
	}
	return nil
}

// eventTime is the provider's timestamp, else when ingest received the event
// (its header), else when JetStream stored it.
func eventTime(ev event.Event, receivedAt string, stored time.Time) time.Time {
	if !ev.Timestamp.IsZero() {
		return ev.Timestamp
	}
	if t, err := time.Parse(time.RFC3339Nano, receivedAt); err == nil {
		return t
	}
	return stored
}

func (h *Handler) publishIntent(ctx context.Context, in intent.Intent) error {
	data, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("%w: encode intent %s: %w", errPermanent, in.ID, err)
	}
	msg := nats.NewMsg(h.names.NotifySubject(string(in.Kind)))
	msg.Data = data
	telemetry.Inject(ctx, msg.Header)
	if _, err := h.pub.PublishMsg(ctx, msg, jetstream.WithMsgID(in.ID)); err != nil {
		return fmt.Errorf("publish intent %s: %w", in.ID, err)
	}
	h.metrics.intents.WithLabelValues(string(in.Kind)).Inc()
	return nil
}

// deadLetter copies the message to ESIM_DLQ with the error, the original
// subject and the delivery count.
func (h *Handler) deadLetter(ctx context.Context, msg jetstream.Msg, meta *jetstream.MsgMetadata, cause error) error {
	return publishDeadLetter(ctx, h.pub, h.names, msg.Subject(), msg.Data(), msg.Headers(), meta.Sequence.Stream, meta.NumDelivered, cause.Error(), h.metrics)
}

// DeadLetterID is the Nats-Msg-Id of the dead letter of ESIM_EVENTS sequence
// seq: whoever writes it — the handler, or the advisory listener for an event
// whose instance died — JetStream keeps one.
func DeadLetterID(seq uint64) string { return "dlq:events:" + strconv.FormatUint(seq, 10) }

func publishDeadLetter(ctx context.Context, pub Publisher, names stream.Names, subject string, data []byte, hdr nats.Header,
	seq, deliveries uint64, cause string, m *metrics,
) error {
	dl := nats.NewMsg(names.DLQSubject("events"))
	dl.Data = data
	for k, v := range hdr {
		dl.Header[k] = v
	}
	if key := stream.DedupeKey(hdr); key != "" {
		// The dead letter's own Nats-Msg-Id is its id: keep the event's key
		// beside it, for inspection and re-drive.
		dl.Header.Set(stream.HeaderDedupeKey, key)
	}
	dl.Header.Set(stream.HeaderError, cause)
	dl.Header.Set(stream.HeaderSubject, subject)
	dl.Header.Set(stream.HeaderDeliveries, strconv.FormatUint(deliveries, 10))
	dl.Header.Set(stream.HeaderSequence, strconv.FormatUint(seq, 10))
	if _, err := pub.PublishMsg(ctx, dl, jetstream.WithMsgID(DeadLetterID(seq))); err != nil {
		return fmt.Errorf("publish dead letter of %d: %w", seq, err)
	}
	m.deadLetters.Inc()
	return nil
}
