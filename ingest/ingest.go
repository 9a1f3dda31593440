package ingest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/esimflow/esimflow/ingest/verify"
	"github.com/esimflow/esimflow/shared/admin"
	"github.com/esimflow/esimflow/shared/config"
	"github.com/esimflow/esimflow/shared/httpserve"
	"github.com/esimflow/esimflow/shared/provider"
	"github.com/esimflow/esimflow/shared/stream"
	"github.com/esimflow/esimflow/shared/telemetry"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"
)

// Publisher is the one JetStream call ingest needs. msg is ingest's until
// PublishMsg returns: ingest reuses it for the next event after that (the
// NATS client has encoded it by then), so an implementation keeps a copy of
// anything it reads later.
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
	// Tracer traces each request; nil means no tracing.
	Tracer trace.TracerProvider
	// Providers are the provider adapters; nil means the built-ins and
	// the mapping files of ESIMFLOW_PROVIDERS_DIR.
	Providers *provider.Registry
}

// Service is a webhook receiver ready to serve.
type Service struct {
	srv       *http.Server
	ln        net.Listener
	log       *slog.Logger
	protected bool
	providers []string // the provider endpoints' names
}

// readTimeout bounds reading one request, headers and body.
const readTimeout = 2 * time.Second

// New builds the receiver and registers its metrics.
func New(cfg config.Ingest, deps Deps) (*Service, error) {
	if deps.Publisher == nil || deps.Admin == nil || deps.Logger == nil {
		return nil, errors.New("ingest: publisher, admin server and logger are required")
	}
	log := deps.Logger.With("service", "ingest")
	// Who may post: judged on the address actually listened on.
	exposed := cfg
	exposed.HTTPAddr = addrOf(deps.Listener, cfg.HTTPAddr)
	if err := exposed.CheckExposure(); err != nil {
		return nil, fmt.Errorf("ingest: %w", err)
	}

	// Sender verification: every configured check must pass.
	clientIP := verify.NewClientIP(cfg.TrustedProxies)
	var sender, signed verify.All
	var replays replayGuard
	if len(cfg.AllowCIDRs) > 0 {
		sender = append(sender, verify.NewAllowlist(cfg.AllowCIDRs, clientIP))
	}
	if len(cfg.Tokens) > 0 {
		sender = append(sender, verify.NewTokens(cfg.Tokens))
	}
	if len(cfg.HMACSecrets) > 0 {
		sw, err := verify.NewStandardWebhooks(cfg.HMACSecrets, cfg.HMACTolerance, time.Now)
		if err != nil {
			return nil, fmt.Errorf("ESIMFLOW_INGEST_HMAC_SECRETS: %w", err)
		}
		signed = append(signed, sw)
		replays = sw
	}
	if len(cfg.SignatureSecrets) > 0 {
		signed = append(signed, verify.NewHeaderHMAC(cfg.SignatureHeader, cfg.SignatureEncoding, cfg.SignatureSecrets))
	}

	// Providers: each adapter with its verifier, keyed with its secrets.
	reg := deps.Providers
	if reg == nil {
		var err error
		if reg, err = provider.Load(cfg.ProvidersDir, provider.Options{SNSHosts: cfg.SNSHosts}); err != nil {
			return nil, fmt.Errorf("ingest: %w", err)
		}
	}
	adapters, err := adaptersOf(reg, cfg.ProviderSecretsOf(), log)
	if err != nil {
		return nil, fmt.Errorf("ingest: %w", err)
	}

	// Handler: limit, verify, bound, classify, publish, answer. The chaos
	// suite's failpoints wrap the publisher and the routes in its builds
	// (failpoints.go), and nothing in others.
	names := stream.NewNames(cfg.Namespace)
	pub := deps.Publisher
	if js, ok := pub.(jetstream.JetStream); ok {
		// The client's publish, with its PubAcks read without
		// encoding/json (puback.go).
		pub = newJSPublisher(js)
	}
	h := &Handler{
		pub:      failpointPublisher(pub, names),
		names:    names,
		maxBody:  cfg.MaxBody,
		timeout:  cfg.PublishTimeout,
		sender:   sender,
		signed:   signed,
		adapters: adapters,
		replays:  replays,
		clientIP: clientIP,
		limiter:  newIPLimiter(cfg.RateLimit, cfg.RateBurst),
		traced:   !telemetry.Off(deps.Tracer),
		needIP:   cfg.RateLimit > 0 || len(cfg.AllowCIDRs) > 0,
		subjects: newEventSubjects(names),
		bodies:   newBodyPool(),
		msgs:     newMsgPool(),
		metrics:  newMetrics(deps.Admin.Registerer()),
		tracer:   telemetry.OrNoop(deps.Tracer).Tracer("esimflow/ingest"),
		log:      log,
	}

	// Server: reading a request takes at most readTimeout and publishing it
	// at most the publish timeout, so every answer leaves well inside the
	// provider's 5 s; slow clients (slow-loris) are cut off by the same bound.
	srv := &http.Server{
		Addr:              cfg.HTTPAddr,
		Handler:           failpointRoutes(routes(h)),
		ReadHeaderTimeout: readTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      readTimeout + cfg.PublishTimeout + time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	protected := len(sender)+len(signed) > 0
	return &Service{srv: srv, ln: deps.Listener, log: log, protected: protected, providers: reg.Names()}, nil
}

// adaptersOf pairs each adapter with its verifier. A secret for a provider
// no adapter has is a typo that would leave the provider unverified: an
// error.
func adaptersOf(reg *provider.Registry, secrets map[string][]string, log *slog.Logger) (map[string]adapter, error) {
	out := map[string]adapter{}
	for name := range secrets {
		if _, ok := reg.Get(name); !ok {
			return nil, fmt.Errorf("ESIMFLOW_PROVIDER_SECRETS: no provider %q (known: %s)", name, strings.Join(reg.Names(), ", "))
		}
	}
	var open []string
	for _, name := range reg.Names() {
		a, _ := reg.Get(name)
		v, err := a.Verifier(secrets[name])
		if err != nil {
			return nil, fmt.Errorf("ESIMFLOW_PROVIDER_SECRETS: %s: %w", name, err)
		}
		if v == nil && name != provider.Default {
			open = append(open, name)
		}
		out[name] = adapter{Adapter: a, verifier: v}
	}
	if len(open) > 0 {
		log.Info("providers without a signature check (tokens and the allowlist still apply); set ESIMFLOW_PROVIDER_SECRETS", "providers", open)
	}
	return out, nil
}

// Run serves the webhook endpoint until ctx ends, then shuts down gracefully:
// it stops accepting, and requests in flight finish their publish and get
// their true answer. The caller drains NATS after Run returns.
func (s *Service) Run(ctx context.Context) error {
	if !s.protected {
		s.log.Warn("INGEST ACCEPTS WEBHOOKS FROM EVERY SENDER THAT REACHES "+addrOf(s.ln, s.srv.Addr)+": no sender verification is configured "+
			"(set ESIMFLOW_INGEST_TOKENS, ESIMFLOW_INGEST_HMAC_SECRETS, ESIMFLOW_INGEST_SIGNATURE_* or ESIMFLOW_INGEST_ALLOW_CIDRS)",
			"loopback_only", config.Loopback(addrOf(s.ln, s.srv.Addr)))
	}
	s.log.Info("ingest listening", "addr", addrOf(s.ln, s.srv.Addr), "path", "/webhooks/esim", "providers", "/webhooks/{"+strings.Join(s.providers, ",")+"}")
	return httpserve.Run(ctx, s.srv, s.ln)
}

// Run builds a receiver and serves until ctx ends.
func Run(ctx context.Context, cfg config.Ingest, deps Deps) error {
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
