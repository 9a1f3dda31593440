// Package stream defines esimflow's JetStream layout — streams, subjects and
// durable consumers — and creates it idempotently at start-up.
//
// Every name carries the deployment's namespace (ESIMFLOW_NAMESPACE), so several
// deployments, and tests, share one NATS without meeting. Ensure compares the
// config the server returns with the one asked for: a server that silently drops
// a field it does not know (older versions do) stops start-up with a clear error
// instead of weakening an invariant unnoticed.
package stream

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/esimflow/esimflow/shared/event"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Base names; Names adds the namespace.
const (
	Events   = "ESIM_EVENTS"
	Notify   = "ESIM_NOTIFY"
	DLQ      = "ESIM_DLQ"
	Rejected = "ESIM_REJECTED"

	ProcessorConsumer = "processor"
	NotifierConsumer  = "notifier"
)

// Message headers esimflow sets.
const (
	// HeaderReceivedAt is when ingest received the event (RFC 3339, UTC): the
	// timestamp that guards merges when the provider sends none.
	HeaderReceivedAt = "Esimflow-Received-At"
	// HeaderDedupeKey is the original's dedupe key on a dead letter, whose
	// own Nats-Msg-Id is the dead letter's id; a re-drive publishes the
	// original again with it as Nats-Msg-Id (see DedupeKey).
	HeaderDedupeKey = "Esimflow-Dedupe-Key"
	// HeaderError, HeaderSubject, HeaderDeliveries and HeaderSequence
	// describe a dead letter of either stream: the error, and the original's
	// subject, delivery count and stream sequence.
	HeaderError      = "Esimflow-Error"
	HeaderSubject    = "Esimflow-Original-Subject"
	HeaderDeliveries = "Esimflow-Deliveries"
	HeaderSequence   = "Esimflow-Original-Sequence"
	// HeaderSource says where a stored event came from when not a webhook:
	// "poll" for the reconciler's (processor/reconcile).
	HeaderSource = "Esimflow-Source"
	// HeaderProvider and HeaderAdapter name the provider adapter that read
	// a stored event and its version; HeaderEventIndex is which of the
	// canonical events its body holds this message stands for (0 when
	// absent). A message without them is read as the default provider's
	// (shared/provider).
	HeaderProvider   = "Esimflow-Provider"
	HeaderAdapter    = "Esimflow-Adapter"
	HeaderEventIndex = "Esimflow-Event-Index"
)

// Names builds namespaced names.
type Names struct{ ns string }

// NewNames returns the names for namespace ns ("" for none). ns must already be
// validated (config.Validate does).
func NewNames(ns string) Names { return Names{ns: ns} }

// Namespace returns the namespace.
func (n Names) Namespace() string { return n.ns }

// Stream namespaces a stream or consumer name: "ESIM_EVENTS" or "<ns>_ESIM_EVENTS".
func (n Names) Stream(base string) string {
	if n.ns == "" {
		return base
	}
	return n.ns + "_" + base
}

// Consumer namespaces a durable consumer name.
func (n Names) Consumer(base string) string { return n.Stream(base) }

func (n Names) subject(s string) string {
	if n.ns == "" {
		return s
	}
	return n.ns + "." + s
}

// EventSubject is where ingest publishes events of type t: esim.events.<type>.
func (n Names) EventSubject(t event.Type) string { return n.subject("esim.events." + t.Token()) }

// NotifySubject is where the processor publishes intents of a kind.
func (n Names) NotifySubject(kind string) string { return n.subject("esim.notify." + kind) }

// DLQSubject is where dead letters of a source ("events", "notify") go.
func (n Names) DLQSubject(source string) string { return n.subject("esim.dlq." + source) }

// WakeSubject is where what a waiting intent may need is announced once
// stored — a contact, an order link, a lower warning's end (intent.Wake):
// core NATS, in no stream; a lost announcement costs time, not a message.
func (n Names) WakeSubject() string { return n.subject("esim.wake") }

// RejectedSubject is where ingest keeps bodies it answered 400.
func (n Names) RejectedSubject() string { return n.subject("esim.rejected") }

// Limits are the stream settings a deployment chooses.
type Limits struct {
	Replicas       int
	EventsMaxAge   time.Duration
	EventsMaxBytes int64
	MaxDeliver     int
}

// AckWait is how long a consumer may hold a message before the server
// redelivers it: the bound on one handler's work, and how soon the event of an
// instance that died holding it is retried.
const AckWait = 30 * time.Second

// The consumers set no server-side BackOff, on purpose: with one, the server
// measures a NAK's delay from BackOff[delivery-1] instead of AckWait, so a
// NakWithDelay(2s) on a second delivery waits a whole step longer. Handlers
// retry their own failures with NakWithDelay and a delay that grows with the
// delivery count; a message whose handler died is redelivered after AckWait.

// StreamConfigs returns the four streams as esimflow wants them.
func (n Names) StreamConfigs(l Limits) []jetstream.StreamConfig {
	replicas := max(l.Replicas, 1)
	return []jetstream.StreamConfig{{
		Name:        n.Stream(Events),
		Description: "every webhook event answered 200; the source of truth",
		Subjects:    []string{n.subject("esim.events.>")},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		// A full stream refuses new events (ingest answers 503 and the provider
		// retries) rather than dropping unprocessed ones.
		Discard:    jetstream.DiscardNew,
		MaxAge:     l.EventsMaxAge,
		MaxBytes:   l.EventsMaxBytes,
		MaxMsgs:    -1,
		Duplicates: 2 * time.Minute,
		Replicas:   replicas,
	}, {
		Name:        n.Stream(Notify),
		Description: "notification intents, one per intent id",
		Subjects:    []string{n.subject("esim.notify.>")},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardNew,
		MaxAge:      30 * 24 * time.Hour,
		MaxBytes:    -1,
		MaxMsgs:     -1,
		Duplicates:  2 * time.Minute,
		Replicas:    replicas,
	}, {
		Name:        n.Stream(DLQ),
		Description: "events and intents that could not be processed, with the error",
		Subjects:    []string{n.subject("esim.dlq.>")},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardNew,
		MaxBytes:    -1,
		MaxMsgs:     -1,
		Duplicates:  2 * time.Minute,
		Replicas:    replicas,
	}, {
		Name:        n.Stream(Rejected),
		Description: "request bodies answered 400, for debugging; bounded",
		Subjects:    []string{n.RejectedSubject()},
		Storage:     jetstream.FileStorage,
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		MaxAge:      7 * 24 * time.Hour,
		MaxMsgs:     10_000,
		MaxBytes:    64 << 20,
		Duplicates:  2 * time.Minute,
		Replicas:    replicas,
	}}
}

// ConsumerConfig returns a durable pull consumer's config: explicit ack,
// MaxDeliver set explicitly, no inactivity threshold.
func (n Names) ConsumerConfig(name string, l Limits) jetstream.ConsumerConfig {
	return jetstream.ConsumerConfig{
		Durable:       n.Consumer(name),
		AckPolicy:     jetstream.AckExplicitPolicy,
		AckWait:       AckWait,
		DeliverPolicy: jetstream.DeliverAllPolicy,
		MaxDeliver:    l.MaxDeliver,
		MaxAckPending: 4096,
		MaxWaiting:    512,
	}
}

// Ensure creates or updates the streams and returns the two durable consumers
// (processor on ESIM_EVENTS, notifier on ESIM_NOTIFY), checking that the server
// kept every setting. A process opens only what it uses: EnsureStreams, then
// EnsureConsumer for its own consumer.
func Ensure(ctx context.Context, js jetstream.JetStream, n Names, l Limits) (processor, notifier jetstream.Consumer, err error) {
	if err := EnsureStreams(ctx, js, n, l); err != nil {
		return nil, nil, err
	}
	if processor, err = EnsureConsumer(ctx, js, n, l, ProcessorConsumer); err != nil {
		return nil, nil, err
	}
	if notifier, err = EnsureConsumer(ctx, js, n, l, NotifierConsumer); err != nil {
		return nil, nil, err
	}
	return processor, notifier, nil
}

// EnsureStreams creates or updates the four streams, checking that the
// server kept every setting.
func EnsureStreams(ctx context.Context, js jetstream.JetStream, n Names, l Limits) error {
	if l.MaxDeliver < 2 {
		return fmt.Errorf("max deliver %d: want at least 2, or a transient failure dead-letters at once", l.MaxDeliver)
	}
	atomic := AtomicBatches(js.Conn())
	for _, want := range n.StreamConfigs(l) {
		// Ingest's events and the processor's intents share atomic
		// batches where the server takes them (BatchPublisher). Not
		// compared: a server that drops it only makes each publish go
		// alone, as on an older server.
		want.AllowAtomicPublish = atomic && (want.Name == n.Stream(Events) || want.Name == n.Stream(Notify))
		s, err := js.CreateOrUpdateStream(ctx, want)
		if err != nil {
			return fmt.Errorf("stream %s: %w", want.Name, err)
		}
		if err := compareStream(want, s.CachedInfo().Config); err != nil {
			return fmt.Errorf("stream %s: %w", want.Name, err)
		}
	}
	return nil
}

// EnsureConsumer creates or updates one durable consumer, ProcessorConsumer
// or NotifierConsumer, on its stream, checking that the server kept every
// setting.
func EnsureConsumer(ctx context.Context, js jetstream.JetStream, n Names, l Limits, name string) (jetstream.Consumer, error) {
	var base string
	switch name {
	case ProcessorConsumer:
		base = Events
	case NotifierConsumer:
		base = Notify
	default:
		return nil, fmt.Errorf("consumer %q: not one of esimflow's", name)
	}
	return ensureConsumer(ctx, js, n.Stream(base), n.ConsumerConfig(name, l))
}

func ensureConsumer(ctx context.Context, js jetstream.JetStream, streamName string, want jetstream.ConsumerConfig) (jetstream.Consumer, error) {
	c, err := js.CreateOrUpdateConsumer(ctx, streamName, want)
	if err != nil {
		return nil, fmt.Errorf("consumer %s on %s: %w", want.Durable, streamName, err)
	}
	if err := compareConsumer(want, c.CachedInfo().Config); err != nil {
		return nil, fmt.Errorf("consumer %s on %s: %w", want.Durable, streamName, err)
	}
	return c, nil
}

// ErrServerIgnoredSetting marks a stream or consumer whose server-side config
// differs from the one asked for.
var ErrServerIgnoredSetting = errors.New("server did not keep the setting (upgrade NATS, or check the existing stream)")

func compareStream(want, got jetstream.StreamConfig) error {
	var errs []error
	check := func(field string, ok bool, w, g any) {
		if !ok {
			errs = append(errs, fmt.Errorf("%s: asked %v, server has %v: %w", field, w, g, ErrServerIgnoredSetting))
		}
	}
	check("subjects", slices.Equal(want.Subjects, got.Subjects), want.Subjects, got.Subjects)
	check("storage", want.Storage == got.Storage, want.Storage, got.Storage)
	check("discard", want.Discard == got.Discard, want.Discard, got.Discard)
	check("max_age", want.MaxAge == got.MaxAge, want.MaxAge, got.MaxAge)
	check("max_bytes", want.MaxBytes == got.MaxBytes, want.MaxBytes, got.MaxBytes)
	check("max_msgs", want.MaxMsgs == got.MaxMsgs, want.MaxMsgs, got.MaxMsgs)
	check("duplicate_window", want.Duplicates == got.Duplicates, want.Duplicates, got.Duplicates)
	check("replicas", want.Replicas == got.Replicas, want.Replicas, got.Replicas)
	return errors.Join(errs...)
}

func compareConsumer(want, got jetstream.ConsumerConfig) error {
	var errs []error
	check := func(field string, ok bool, w, g any) {
		if !ok {
			errs = append(errs, fmt.Errorf("%s: asked %v, server has %v: %w", field, w, g, ErrServerIgnoredSetting))
		}
	}
	check("ack_policy", want.AckPolicy == got.AckPolicy, want.AckPolicy, got.AckPolicy)
	check("ack_wait", want.AckWait == got.AckWait, want.AckWait, got.AckWait)
	check("max_deliver", want.MaxDeliver == got.MaxDeliver, want.MaxDeliver, got.MaxDeliver)
	check("backoff", slices.Equal(want.BackOff, got.BackOff), want.BackOff, got.BackOff)
	check("max_ack_pending", want.MaxAckPending == got.MaxAckPending, want.MaxAckPending, got.MaxAckPending)
	check("inactive_threshold", got.InactiveThreshold == 0, time.Duration(0), got.InactiveThreshold)
	return errors.Join(errs...)
}

// DedupeKey is the dedupe key a stored message carries: a dead letter's
// HeaderDedupeKey, else the Nats-Msg-Id it was published with (ingest
// publishes each event with its key as the id). Empty when the publisher set
// none; consumers then derive the key from the body.
func DedupeKey(h nats.Header) string {
	if k := h.Get(HeaderDedupeKey); k != "" {
		return k
	}
	return h.Get(jetstream.MsgIDHeader)
}
