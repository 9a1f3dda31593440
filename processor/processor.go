package processor

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"

	"github.com/esimflow/esimflow/processor/merge"
	"github.com/esimflow/esimflow/processor/reconcile"
	"github.com/esimflow/esimflow/shared/admin"
	"github.com/esimflow/esimflow/shared/config"
	"github.com/esimflow/esimflow/shared/consume"
	"github.com/esimflow/esimflow/shared/event"
	"github.com/esimflow/esimflow/shared/intent"
	"github.com/esimflow/esimflow/shared/provider"
	"github.com/esimflow/esimflow/shared/store"
	"github.com/esimflow/esimflow/shared/stream"
	"github.com/esimflow/esimflow/shared/telemetry"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/errgroup"
)

// Store is what the processor keeps: the seen-set and order/profile state,
// one key or entity at a time and batched (both stores do both).
type Store interface {
	merge.State
	store.SeenSet
	store.BatchSeenSet
	store.BatchState
	Order(ctx context.Context, orderNo string) (store.Order, error)
	Profile(ctx context.Context, iccid string) (store.Profile, error)
	Ping(ctx context.Context) error
}

// Publisher publishes intents and dead letters. PublishMsg waits for the
// PubAck; PublishMsgAsync does not, so that the intents of a batch are
// awaited together (a jetstream.JetStream is one).
type Publisher interface {
	PublishMsg(ctx context.Context, msg *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error)
	PublishMsgAsync(msg *nats.Msg, opts ...jetstream.PublishOpt) (jetstream.PubAckFuture, error)
}

// Streams opens streams by name: ESIM_EVENTS, to read an event by sequence,
// and ESIM_DLQ, for the dead-letter API. A jetstream.JetStream is one.
type Streams interface {
	Stream(ctx context.Context, name string) (jetstream.Stream, error)
}

// Subscriber subscribes to core NATS subjects (the server's advisories). A
// *nats.Conn is one.
type Subscriber interface {
	QueueSubscribe(subj, queue string, cb nats.MsgHandler) (*nats.Subscription, error)
}

// Deps are what Run needs from its caller.
type Deps struct {
	Consumer   jetstream.Consumer // the durable "processor" consumer on ESIM_EVENTS
	Publisher  Publisher
	Streams    Streams
	Subscriber Subscriber
	Store      Store
	Admin      *admin.Server
	Logger     *slog.Logger
	// Workers is how many events (default 8), or with batches
	// (ESIMFLOW_PROCESSOR_BATCH > 1) how many batches (default 4), are
	// handled at once.
	Workers int
	// Tracer traces each event; nil means no tracing.
	Tracer trace.TracerProvider
	// Providers read stored events by the adapter their headers name; nil
	// means the built-ins and the mapping files of ESIMFLOW_PROVIDERS_DIR.
	Providers *provider.Registry
	// Wake, when set, announces the order links the processor stores
	// (stream.Names.WakeSubject), so that notifiers look at once at the
	// messages waiting for them; without it they find them on their retry.
	Wake Announcer
}

// Announcer publishes on core NATS (a *nats.Conn).
type Announcer interface {
	Publish(subj string, data []byte) error
}

// Service is a processor ready to consume.
type Service struct {
	pipe        *consume.Pipeline
	handle      consume.Handler
	handleBatch consume.BatchHandler
	advisories  *advisories
	sub         Subscriber
	cons        jetstream.Consumer
	workers     int
	batch       int
	reconciler  *reconcile.Reconciler // nil unless configured
	log         *slog.Logger
}

// New builds the processor and registers its API routes, metrics and
// readiness check, so they are in place before the API serves.
func New(cfg config.Processor, deps Deps) (*Service, error) {
	if deps.Consumer == nil || deps.Publisher == nil || deps.Streams == nil || deps.Subscriber == nil ||
		deps.Store == nil || deps.Admin == nil || deps.Logger == nil {
		return nil, errors.New("processor: consumer, publisher, streams, subscriber, store, admin server and logger are required")
	}
	log := deps.Logger.With("service", "processor")
	workers := deps.Workers
	if workers <= 0 {
		workers = 8
		if cfg.Batch > 1 {
			workers = 4
		}
	}

	names := stream.NewNames(cfg.Namespace)
	m := newMetrics(deps.Admin.Registerer())
	providers := deps.Providers
	if providers == nil {
		var err error
		if providers, err = provider.Load(cfg.ProvidersDir, provider.Options{}); err != nil {
			return nil, fmt.Errorf("processor: %w", err)
		}
	}

	// Handler: decode, merge, publish intents, mark seen; the pipeline acks
	// (or retries, holds, dead-letters) what the handler decided. The chaos
	// suite's failpoints wrap the store, the publisher and the handlers in
	// its builds (failpoints.go), and nothing in others.
	h := &Handler{
		store:     failpointStore(deps.Store),
		pub:       failpointPublisher(deps.Publisher),
		decoder:   event.Decoder{MaxSkew: cfg.MaxEventSkew},
		providers: providers,
		names:     names,
		rules: intent.Rules{LowDataThresholds: cfg.LowDataThresholds, ValidityLowDays: intent.DefaultValidityLowDays,
			TopUps: cfg.TopUps, Renewals: cfg.Renewals},
		metrics: m,
		parked:  newParkedLog(),
		wake:    deps.Wake,
		log:     log,
	}
	pipe := &consume.Pipeline{
		Kind: deadLetterKind, Names: names, MaxDeliver: cfg.MaxDeliver, Publisher: deps.Publisher, Key: keyOf(providers),
		Ready: h.storeUp, Observe: h.observe,
		Tracer: telemetry.OrNoop(deps.Tracer).Tracer("esimflow/processor"), Span: "processor event", Log: log,
	}
	// Safety net: the dead letter of an event whose instance died holding it
	// on its last delivery.
	adv := &advisories{key: keyOf(providers), streams: deps.Streams, store: deps.Store, pub: deps.Publisher, names: names, metrics: m, log: log}

	// Reconciler, when a provider query API is configured: every instance
	// runs one, and a lease in the store lets one sweep at a time
	// (docs/adr/0010).
	var rec *reconcile.Reconciler
	if cfg.Reconcile.On() {
		rs, ok := deps.Store.(reconcile.Store)
		if !ok {
			return nil, errors.New("processor: the reconciler needs a store with claims and budgets")
		}
		var err error
		rec, err = reconcile.New(cfg.Reconcile, reconcile.Deps{Store: rs, Publisher: deps.Publisher, Names: names,
			Owner: instanceName(), Registerer: deps.Admin.Registerer(), Logger: log})
		if err != nil {
			return nil, err
		}
	}

	// API and readiness: a store that does not answer makes /readyz 503.
	registerRoutes(deps.Admin, api{state: deps.Store, streams: deps.Streams, pub: deps.Publisher, names: names, parked: h.parked})
	deps.Admin.AddCheck("store", deps.Store.Ping)
	deps.Admin.WatchConsumer(deps.Consumer)
	return &Service{pipe: pipe, handle: failpointHandler(h.Handle), handleBatch: failpointBatchHandler(h.HandleBatch),
		advisories: adv, sub: deps.Subscriber, cons: deps.Consumer, workers: workers, batch: cfg.Batch, reconciler: rec, log: log}, nil
}

// instanceName names this process among the processors sharing a store:
// its host and a random suffix.
func instanceName() string {
	host, _ := os.Hostname() // a name only; the suffix keeps it unique
	var b [6]byte
	_, _ = rand.Read(b[:])
	return host + "-" + hex.EncodeToString(b[:])
}

// Run consumes events and listens for max-deliveries advisories until ctx
// ends, then stops pulling, lets the handlers in flight finish and returns.
func (s *Service) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return s.advisories.listen(ctx, s.sub) })
	if s.reconciler != nil {
		g.Go(func() error { return s.reconciler.Run(ctx) })
	}
	g.Go(func() error {
		if s.batch > 1 {
			return s.pipe.RunBatches(ctx, s.cons, s.workers, s.batch, s.handleBatch, s.handle)
		}
		return s.pipe.Run(ctx, s.cons, s.workers, s.handle)
	})
	return g.Wait()
}

// Run builds a processor and runs it until ctx ends.
func Run(ctx context.Context, cfg config.Processor, deps Deps) error {
	s, err := New(cfg, deps)
	if err != nil {
		return err
	}
	return s.Run(ctx)
}
