package processor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/esimflow/esimflow/processor/merge"
	"github.com/esimflow/esimflow/shared/consume"
	"github.com/esimflow/esimflow/shared/dedupe"
	"github.com/esimflow/esimflow/shared/event"
	"github.com/esimflow/esimflow/shared/intent"
	"github.com/esimflow/esimflow/shared/provider"
	"github.com/esimflow/esimflow/shared/store"
	"github.com/esimflow/esimflow/shared/stream"
	"github.com/esimflow/esimflow/shared/telemetry"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// opTimeout bounds one event's work: well inside the consumer's AckWait, so a
// hung store call turns into a retry rather than a duplicate delivery.
const opTimeout = 10 * time.Second

// Handler decides what becomes of events: it merges them, publishes their
// intents and marks them seen, and returns an outcome that the pipeline
// (shared/consume) settles.
type Handler struct {
	store   Store
	pub     Publisher     // intents
	decoder event.Decoder // bounds event times by its clock
	// providers read a stored event by the adapter its headers name.
	providers *provider.Registry
	names     stream.Names
	rules     intent.Rules
	metrics   *metrics
	parked    *parkedLog
	wake      Announcer // nil: no wake-ups
	log       *slog.Logger
}

// Outcomes of one event, the values of the outcome label.
const (
	outcomeApplied   = "applied"
	outcomeDuplicate = "duplicate"
	outcomeParked    = "parked" // unknown type or health check: counted, kept in the stream, not merged
	outcomeDead      = consume.ResultDeadLetter
	outcomeRetry     = consume.ResultRetry
)

// Handle decides one event (a consume.Handler).
func (h *Handler) Handle(ctx context.Context, m *consume.Msg) consume.Outcome {
	ev, key, decodeErr := h.decode(m)
	label, err := h.attempt(ctx, m, ev, key, decodeErr)
	return h.outcome(ctx, label, err).For(ev.Type.Token())
}

// outcome turns an attempt's result into a decision. A store outage is not
// the event's fault: the event is held until the store answers (see
// docs/design.md, "Failure handling") rather than spend its deliveries.
func (h *Handler) outcome(ctx context.Context, label string, err error) consume.Outcome {
	switch {
	case err == nil:
		return consume.Ack(label)
	case errors.Is(err, consume.ErrPermanent) || h.storeUp(ctx):
		return consume.Fail(err)
	}
	return consume.Hold(err)
}

// storeUp reports whether the store answers: what ends a hold.
func (h *Handler) storeUp(ctx context.Context) bool {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	return h.store.Ping(ctx) == nil
}

// attempt does everything but the ack, in the order invariant 4 requires
// (docs/design.md, "Invariants"): merge, intents, then the seen mark.
func (h *Handler) attempt(ctx context.Context, m *consume.Msg, ev event.Event, key string, decodeErr error) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, opTimeout)
	defer cancel()
	if seen, err := h.store.Seen(ctx, key); err != nil {
		return "", fmt.Errorf("seen %s: %w", key, err)
	} else if seen {
		return outcomeDuplicate, h.foldCopy(ctx, ev, m, decodeErr)
	}
	if decodeErr != nil {
		return "", consume.Permanent(decodeErr)
	}
	if parked(ev) {
		if err := h.markSeen(ctx, key); err != nil {
			return "", err
		}
		h.park(ev, m)
		return outcomeParked, nil
	}
	if err := h.apply(ctx, ev, m); err != nil {
		return "", err
	}
	return outcomeApplied, h.markSeen(ctx, key)
}

// decode reads an event, stamped with where it is stored (Stamp), and its
// dedupe key.
func (h *Handler) decode(m *consume.Msg) (event.Event, string, error) {
	ev, decodeErr := h.providers.DecodeStored(h.decoder, m.Headers(), m.Data())
	return ev, Stamp(&ev, m.Headers(), decodeErr, m.Data(), m.Seq()), decodeErr
}

// Stamp gives a decoded event what its stored copy adds: its ESIM_EVENTS
// sequence, dedupe key and the time ingest received it (its
// Esimflow-Received-At header), which the state's timeline records; and
// returns the key. The handler, replay and the oracles that check them all
// read stored events through it, so they merge the same state.
func Stamp(ev *event.Event, hdr nats.Header, decodeErr error, data []byte, seq uint64) string {
	ev.Seq = seq
	key := eventKey(hdr, *ev, decodeErr, data)
	ev.Key = key
	if t, err := time.Parse(time.RFC3339Nano, hdr.Get(stream.HeaderReceivedAt)); err == nil {
		ev.ReceivedAt = t.UTC()
	}
	return key
}

// eventKey is a stored event's dedupe key: ingest's Nats-Msg-Id, else
// derived from the body as ingest derives it, else — an event with neither
// an id nor a time, which ingest stores every time — its place in the stream
// (docs/design.md, "Dedupe keys").
func eventKey(hdr nats.Header, ev event.Event, decodeErr error, data []byte) string {
	if key := stream.DedupeKey(hdr); key != "" {
		return key
	}
	if key := dedupe.Key(ev, decodeErr, data); key != "" || ev.Seq == 0 {
		return key
	}
	return dedupe.SeqKey(ev.Seq, data)
}

// keyOf returns eventKey of a message not decoded yet: the key a dead
// letter carries. An untimed event's dead letter carries none: re-driven,
// it is stored again as a new arrival.
func keyOf(providers *provider.Registry) func(hdr nats.Header, data []byte) string {
	return func(hdr nats.Header, data []byte) string {
		ev, err := providers.DecodeStored(event.Decoder{}, hdr, data)
		return eventKey(hdr, ev, err, data)
	}
}

// parked reports whether an event is parked rather than merged. An
// operator alert is parked: it is about the reseller's account, so it
// changes no eSIM's state and sends no customer anything.
func parked(ev event.Event) bool {
	return ev.Type == event.Unknown || ev.Type == event.CheckHealth || ev.Type == event.OperatorAlert
}

// park records a parked event (metric and GET /v1/parked); an operator
// alert is also logged, for the operator to act on.
func (h *Handler) park(ev event.Event, m *consume.Msg) {
	h.parked.add(ev.Type, m.Seq())
	h.metrics.parked.WithLabelValues(ev.Type.Token()).Inc()
	if ev.Type == event.OperatorAlert {
		h.log.Warn("operator alert", "provider", ev.Provider, "alert", ev.Alert, "balance", ev.Balance, "seq", m.Seq())
	}
}

// apply merges an event into the store and publishes its intents. The
// pipeline's span of the event covers both.
func (h *Handler) apply(ctx context.Context, ev event.Event, m *consume.Msg) error {
	at := eventTimeOf(ev, m)
	p, err := merge.Apply(ctx, h.store, ev, at)
	if err != nil {
		return err
	}
	return h.publishIntents(ctx, ev, at, p)
}

// foldCopy records a stored copy of an event already applied (a provider's
// retry stored again, or a redelivery) in its state's timeline: a timed
// event's copies are one event, whose stream sequence is the smallest and
// whose copies are counted (docs/design.md, "Timeline"). It asks for no
// intent: a copy brings no evidence its event did not. A redelivery of the
// copy applied changes nothing, and is not written.
func (h *Handler) foldCopy(ctx context.Context, ev event.Event, m *consume.Msg, decodeErr error) error {
	if decodeErr != nil || parked(ev) {
		return nil
	}
	if _, err := merge.Apply(ctx, h.store, ev, eventTimeOf(ev, m)); err != nil {
		return fmt.Errorf("fold copy: %w", err)
	}
	return nil
}

// now is the processor's clock: a validity period that ended before it
// warns nobody.
func now() time.Time { return time.Now() }

// publishIntents publishes what a merged event asks the notifier to send
// and waits for their PubAcks.
func (h *Handler) publishIntents(ctx context.Context, ev event.Event, at time.Time, p store.Profile) error {
	if err := h.awaitIntents(ctx, h.sendIntents(ctx, ev, at, p)); err != nil {
		return err
	}
	h.announceLinks(ev)
	return nil
}

// sent are an event's intents on their way to ESIM_NOTIFY: published, their
// PubAcks not awaited yet.
type sent struct {
	futures []jetstream.PubAckFuture
	ids     []string
	kinds   []intent.Kind
	err     error // a publish that failed at once; the intents after it were not sent
}

// sendIntents publishes what a merged event asks the notifier to send,
// carrying ctx's trace on to the notifier, without waiting for the PubAcks:
// awaitIntents does, so that many events' intents are in flight at once.
// Both paths, one event at a time and batched, come here once the event's
// merge is stored; p is the state the event's profile landed on.
func (h *Handler) sendIntents(ctx context.Context, ev event.Event, at time.Time, p store.Profile) sent {
	var s sent
	for _, in := range intent.For(ev, at, merge.Land(p, ev, at, now()), h.rules) {
		data, err := json.Marshal(in)
		if err != nil {
			s.err = consume.Permanent(fmt.Errorf("encode intent %s: %w", in.ID, err))
			return s
		}
		msg := nats.NewMsg(h.names.NotifySubject(string(in.Kind)))
		msg.Data = data
		telemetry.Inject(ctx, msg.Header)
		// The intent id is the Nats-Msg-Id: JetStream keeps one of an
		// intent published again by a redelivery. A header, not
		// jetstream.WithMsgID, so that a publisher that batches can read it.
		msg.Header.Set(jetstream.MsgIDHeader, in.ID)
		f, err := h.pub.PublishMsgAsync(msg)
		if err != nil {
			s.err = fmt.Errorf("publish intent %s: %w", in.ID, err)
			return s
		}
		s.futures, s.ids, s.kinds = append(s.futures, f), append(s.ids, in.ID), append(s.kinds, in.Kind)
	}
	return s
}

// awaitIntents waits for the PubAcks of what sendIntents published: once it
// returns nil, every intent of the event is stored, and the event may be
// acked (invariant 4). It waits for all of them, so that none is left
// unawaited, and returns the first failure.
func (h *Handler) awaitIntents(ctx context.Context, s sent) error {
	err := s.err
	for i, f := range s.futures {
		select {
		case <-f.Ok():
			h.metrics.intents.WithLabelValues(string(s.kinds[i])).Inc()
		case e := <-f.Err():
			if err == nil {
				err = fmt.Errorf("publish intent %s: %w", s.ids[i], e)
			}
		case <-ctx.Done():
			return fmt.Errorf("publish intent %s: %w", s.ids[i], ctx.Err())
		}
	}
	return err
}

// announceLinks wakes the messages that may have waited for the order link
// an event carries (a transactionId or order number with its iccids), now
// stored: their contact can be found through it (issue 16, case 1). Only a
// shortcut: a lost announcement leaves them to their retry.
func (h *Handler) announceLinks(ev event.Event) { h.announce(linkKeys(nil, ev)) }

// announce publishes one wake-up with keys; a batch announces all its
// events' links in one, so the notifier reads one message, not one per event.
func (h *Handler) announce(keys []string) {
	if h.wake == nil || len(keys) == 0 {
		return
	}
	if err := h.wake.Publish(h.names.WakeSubject(), intent.EncodeWake(keys)); err != nil {
		h.log.Warn("wake-up not announced; waiting messages find the link on their retry", "err", err)
	}
}

// linkKeys appends the wake-up keys of the order link ev carries, if any.
func linkKeys(keys []string, ev event.Event) []string {
	if ev.TransactionID == "" && ev.OrderNo == "" {
		return keys
	}
	if ev.TransactionID != "" {
		keys = append(keys, intent.WakeTx(ev.TransactionID))
	}
	if ev.ICCID != "" {
		keys = append(keys, intent.WakeICCID(ev.ICCID))
	}
	for _, p := range ev.Profiles {
		if p.ICCID != "" {
			keys = append(keys, intent.WakeICCID(p.ICCID))
		}
	}
	return keys
}

// eventTimeOf is when an event takes effect: see eventTime.
func eventTimeOf(ev event.Event, m *consume.Msg) time.Time {
	return eventTime(ev, m.Headers().Get(stream.HeaderReceivedAt), m.Meta.Timestamp)
}

func (h *Handler) markSeen(ctx context.Context, key string) error {
	if err := h.store.MarkSeen(ctx, key); err != nil {
		return fmt.Errorf("mark seen %s: %w", key, err)
	}
	return nil
}

// eventTime is the provider's timestamp, else when JetStream stored the
// event, else when ingest received it (its header). The stored time comes
// before the header since it rises with the stream sequence, which orders
// untimed events (docs/design.md, "Ordering"): a time that disagreed with
// it would make the order of untimed and timed events circular.
func eventTime(ev event.Event, receivedAt string, stored time.Time) time.Time {
	if !ev.Timestamp.IsZero() {
		return ev.Timestamp
	}
	if !stored.IsZero() {
		return stored.UTC()
	}
	if t, err := time.Parse(time.RFC3339Nano, receivedAt); err == nil {
		return t
	}
	return stored
}

// observe counts what the pipeline did with each event.
func (h *Handler) observe(_ context.Context, _ *consume.Msg, s consume.Settled) {
	h.metrics.processed.WithLabelValues(s.Outcome.Type, s.Result).Inc()
	if s.Result == consume.ResultDeadLetter {
		h.metrics.deadLetters.Inc()
	}
}

// DeadLetterID is the Nats-Msg-Id of the dead letter of ESIM_EVENTS sequence
// seq: whoever writes it — the pipeline, or the advisory listener for an
// event whose instance died — JetStream keeps one.
func DeadLetterID(seq uint64) string { return consume.DeadLetterID(deadLetterKind, seq) }

// deadLetterKind names ESIM_EVENTS in dead-letter subjects and ids.
const deadLetterKind = "events"
