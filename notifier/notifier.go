package notifier

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/esimflow/esimflow/notifier/channel"
	"github.com/esimflow/esimflow/shared/admin"
	"github.com/esimflow/esimflow/shared/config"
	"github.com/esimflow/esimflow/shared/consume"
	"github.com/esimflow/esimflow/shared/store"
	"github.com/esimflow/esimflow/shared/stream"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Store is what the notifier keeps: claims and the notification log.
type Store interface {
	store.Claims
	store.NotificationLog
	Ping(ctx context.Context) error
}

// Channel sends a rendered message to a customer.
type Channel interface {
	Name() string
	Send(ctx context.Context, m channel.Message) error
}

// Publisher writes dead letters.
type Publisher interface {
	PublishMsg(ctx context.Context, msg *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error)
}

// Deps are what Run needs from its caller.
type Deps struct {
	Consumer  jetstream.Consumer // the durable "notifier" consumer on ESIM_NOTIFY
	Publisher Publisher
	Store     Store
	Channel   Channel
	Admin     *admin.Server
	Logger    *slog.Logger
	// Owner names this instance in claims (default: host-pid-random).
	Owner string
	// Lease is how long a claim is held while sending (default 30s).
	Lease   time.Duration
	Workers int // default 4
}

// Service is a notifier ready to consume.
type Service struct {
	handler *Handler
	cons    jetstream.Consumer
	workers int
	log     *slog.Logger
}

// New builds the notifier and registers its API routes, metrics and
// readiness check, so they are in place before the API serves.
func New(cfg config.Config, deps Deps) (*Service, error) {
	if deps.Consumer == nil || deps.Publisher == nil || deps.Store == nil || deps.Channel == nil || deps.Admin == nil || deps.Logger == nil {
		return nil, errors.New("notifier: consumer, publisher, store, channel, admin server and logger are required")
	}
	log := deps.Logger.With("service", "notifier")
	if deps.Owner == "" {
		deps.Owner = defaultOwner()
	}
	if deps.Lease <= 0 {
		deps.Lease = 30 * time.Second
	}
	if deps.Workers <= 0 {
		deps.Workers = 4
	}

	// Handler: claim, check staleness and order, send, mark, log.
	h := &Handler{
		store:      deps.Store,
		channel:    deps.Channel,
		pub:        deps.Publisher,
		names:      stream.NewNames(cfg.Namespace),
		owner:      deps.Owner,
		lease:      deps.Lease,
		maxDeliver: cfg.MaxDeliver,
		metrics:    newMetrics(deps.Admin.Registerer()),
		log:        log,
	}

	// API and readiness.
	registerRoutes(deps.Admin, deps.Store)
	deps.Admin.AddCheck("notifier_store", deps.Store.Ping)
	deps.Admin.WatchConsumer(deps.Consumer)
	log.Info("notifier ready", "channel", deps.Channel.Name(), "owner", deps.Owner)
	return &Service{handler: h, cons: deps.Consumer, workers: deps.Workers, log: log}, nil
}

// Run consumes intents until ctx ends, then lets sends in flight finish.
func (s *Service) Run(ctx context.Context) error {
	return consume.Run(ctx, s.cons, s.workers, s.handler.Handle, s.log)
}

// Run builds a notifier and runs it until ctx ends.
func Run(ctx context.Context, cfg config.Config, deps Deps) error {
	s, err := New(cfg, deps)
	if err != nil {
		return err
	}
	return s.Run(ctx)
}

func defaultOwner() string {
	host, _ := os.Hostname()
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b))
}
