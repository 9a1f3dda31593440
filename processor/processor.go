package processor

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/esimflow/esimflow/processor/merge"
	"github.com/esimflow/esimflow/shared/admin"
	"github.com/esimflow/esimflow/shared/config"
	"github.com/esimflow/esimflow/shared/consume"
	"github.com/esimflow/esimflow/shared/intent"
	"github.com/esimflow/esimflow/shared/store"
	"github.com/esimflow/esimflow/shared/stream"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Store is what the processor keeps: the seen-set and order/profile state.
type Store interface {
	merge.State
	store.SeenSet
	Order(ctx context.Context, orderNo string) (store.Order, error)
	Profile(ctx context.Context, iccid string) (store.Profile, error)
	Ping(ctx context.Context) error
}

// Publisher publishes intents and dead letters and waits for their PubAck.
type Publisher interface {
	PublishMsg(ctx context.Context, msg *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error)
}

// Deps are what Run needs from its caller.
type Deps struct {
	Consumer  jetstream.Consumer // the durable "processor" consumer on ESIM_EVENTS
	Publisher Publisher
	Store     Store
	Admin     *admin.Server
	Logger    *slog.Logger
	// Workers is how many events are handled at once (default 8).
	Workers int
}

// Service is a processor ready to consume.
type Service struct {
	handler *Handler
	cons    jetstream.Consumer
	workers int
	log     *slog.Logger
}

// New builds the processor and registers its API routes, metrics and
// readiness check, so they are in place before the API serves.
func New(cfg config.Config, deps Deps) (*Service, error) {
	if deps.Consumer == nil || deps.Publisher == nil || deps.Store == nil || deps.Admin == nil || deps.Logger == nil {
		return nil, errors.New("processor: consumer, publisher, store, admin server and logger are required")
	}
	log := deps.Logger.With("service", "processor")
	workers := deps.Workers
	if workers <= 0 {
		workers = 8
	}

	// Handler: decode, merge, publish intents, mark seen, ack.
	h := &Handler{
		store:      deps.Store,
		pub:        deps.Publisher,
		names:      stream.NewNames(cfg.Namespace),
		rules:      intent.Rules{LowDataThresholds: cfg.LowDataThresholds, ValidityLowDays: intent.DefaultValidityLowDays},
		maxDeliver: cfg.MaxDeliver,
		metrics:    newMetrics(deps.Admin.Registerer()),
		log:        log,
	}

	// API and readiness.
	registerRoutes(deps.Admin, deps.Store)
	deps.Admin.AddCheck("store", deps.Store.Ping)
	deps.Admin.WatchConsumer(deps.Consumer)
	return &Service{handler: h, cons: deps.Consumer, workers: workers, log: log}, nil
}

// Run consumes events until ctx ends, then stops pulling, lets the handlers in
// flight finish and returns.
func (s *Service) Run(ctx context.Context) error {
	return consume.Run(ctx, s.cons, s.workers, s.handler.Handle, s.log)
}

// Run builds a processor and runs it until ctx ends.
func Run(ctx context.Context, cfg config.Config, deps Deps) error {
	s, err := New(cfg, deps)
	if err != nil {
		return err
	}
	return s.Run(ctx)
}

// nakDelay spaces the retries of an event that failed for a transient reason.
func nakDelay(delivered uint64) time.Duration {
	return min(time.Second<<min(delivered-1, 6), time.Minute)
}
