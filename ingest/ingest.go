package ingest

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/esimflow/esimflow/shared/admin"
	"github.com/esimflow/esimflow/shared/config"
	"github.com/esimflow/esimflow/shared/httpserve"
	"github.com/esimflow/esimflow/shared/stream"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Publisher is the one JetStream call ingest needs.
type Publisher interface {
	PublishMsg(ctx context.Context, msg *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error)
}

// Deps are what Run needs from its caller.
type Deps struct {
	Publisher Publisher
	Admin     *admin.Server // metrics are registered here
	Logger    *slog.Logger
	// Listener, when set, is served instead of listening on cfg.HTTPAddr.
	Listener net.Listener
}

// Service is a webhook receiver ready to serve.
type Service struct {
	srv *http.Server
	ln  net.Listener
	log *slog.Logger
}

// New builds the receiver and registers its metrics.
func New(cfg config.Config, deps Deps) (*Service, error) {
	if deps.Publisher == nil || deps.Admin == nil || deps.Logger == nil {
		return nil, errors.New("ingest: publisher, admin server and logger are required")
	}
	log := deps.Logger.With("service", "ingest")

	// Handler: bound, classify, publish, answer.
	h := &Handler{
		pub:     deps.Publisher,
		names:   stream.NewNames(cfg.Namespace),
		maxBody: cfg.IngestMaxBody,
		timeout: cfg.PublishTimeout,
		metrics: newMetrics(deps.Admin.Registerer()),
		log:     log,
	}

	// Server: timeouts keep every answer well inside the provider's 5 s.
	srv := &http.Server{
		Addr:              cfg.HTTPAddr,
		Handler:           routes(h),
		ReadHeaderTimeout: 2 * time.Second,
		ReadTimeout:       4 * time.Second,
		WriteTimeout:      cfg.PublishTimeout + 4*time.Second,
		IdleTimeout:       60 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	return &Service{srv: srv, ln: deps.Listener, log: log}, nil
}

// Run serves the webhook endpoint until ctx ends, then shuts down gracefully:
// it stops accepting, and requests in flight finish their publish and get
// their true answer. The caller drains NATS after Run returns.
func (s *Service) Run(ctx context.Context) error {
	s.log.Warn("ingest accepts webhooks from every sender: no sender verification is configured")
	s.log.Info("ingest listening", "addr", addrOf(s.ln, s.srv.Addr), "path", "/webhooks/esim")
	return httpserve.Run(ctx, s.srv, s.ln)
}

// Run builds a receiver and serves until ctx ends.
func Run(ctx context.Context, cfg config.Config, deps Deps) error {
	s, err := New(cfg, deps)
	if err != nil {
		return err
	}
	return s.Run(ctx)
}

func addrOf(ln net.Listener, addr string) string {
	if ln != nil {
		return ln.Addr().String()
	}
	return addr
}
