// Package service wires a process: config, logger, NATS (external or embedded),
// the JetStream layout, the store and the internal API server. Every binary —
// the three services and the all-in-one — starts through it, so they connect
// the same way and shut down in the same order: HTTP first, consumers next,
// then NATS is drained, then the embedded server stops.
package service

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/esimflow/esimflow/shared/admin"
	"github.com/esimflow/esimflow/shared/config"
	"github.com/esimflow/esimflow/shared/httpserve"
	"github.com/esimflow/esimflow/shared/natsconn"
	"github.com/esimflow/esimflow/shared/store"
	"github.com/esimflow/esimflow/shared/store/kvstore"
	"github.com/esimflow/esimflow/shared/store/redisstore"
	"github.com/esimflow/esimflow/shared/stream"
	"github.com/esimflow/esimflow/shared/telemetry"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/errgroup"
)

// Env is a wired process: what service Run functions take their deps from.
type Env struct {
	Cfg    config.Config
	Log    *slog.Logger
	NATS   *natsconn.Conn
	Store  store.Store // nil unless Options.Store
	Admin  *admin.Server
	Names  stream.Names
	Events jetstream.Consumer // durable "processor" consumer on ESIM_EVENTS
	Notify jetstream.Consumer // durable "notifier" consumer on ESIM_NOTIFY
	Tracer trace.TracerProvider

	closers []func()
}

// Options say what a process needs.
type Options struct {
	Name string // client and log name
	// Store opens the store: Redis when ESIMFLOW_REDIS_URL is set, else NATS KV.
	Store bool
	// Embedded starts the embedded server when ESIMFLOW_NATS_URL is empty
	// (natsembed.Start); nil for the separate service binaries, which need an
	// external NATS and so do not link the server.
	Embedded natsconn.StartEmbedded
	// FailFast makes Open fail at once when NATS does not answer, for
	// operator commands; services wait for it (up to layoutWait).
	FailFast bool
	// Tracer traces the services; nil means no tracing.
	Tracer trace.TracerProvider
}

// Open connects everything a process needs and creates the JetStream layout.
func Open(ctx context.Context, cfg config.Config, log *slog.Logger, opts Options) (*Env, error) {
	env := &Env{Cfg: cfg, Log: log, Admin: admin.New(cfg.AdminToken), Names: stream.NewNames(cfg.Namespace), Tracer: telemetry.OrNoop(opts.Tracer)}
	if cfg.Pprof {
		env.Admin.ServeProfiles()
	}
	nc, err := natsconn.Open(ctx, cfg, opts.Name, log, opts.Embedded, !opts.FailFast)
	if err != nil {
		return nil, err
	}
	env.NATS = nc
	env.closers = append(env.closers, nc.Close)
	env.Admin.AddCheck("nats", func(context.Context) error {
		if s := nc.NC.Status(); s != nats.CONNECTED {
			return fmt.Errorf("nats %s", s)
		}
		return nil
	})

	limits := stream.Limits{
		Replicas:       cfg.StreamReplicas,
		EventsMaxAge:   cfg.EventsMaxAge,
		EventsMaxBytes: cfg.EventsMaxBytes,
		MaxDeliver:     cfg.MaxDeliver,
	}
	if err := env.ensureLayout(ctx, limits, !opts.FailFast); err != nil {
		env.Close()
		return nil, fmt.Errorf("jetstream layout: %w", err)
	}
	var streams []string
	for _, sc := range env.Names.StreamConfigs(limits) {
		streams = append(streams, sc.Name)
	}
	env.Admin.ServeStatus(nc.JS, streams...)
	if opts.Store {
		if env.Store, err = env.openStore(ctx); err != nil {
			env.Close()
			return nil, err
		}
	}
	return env, nil
}

func (env *Env) openStore(ctx context.Context) (store.Store, error) {
	cfg := env.Cfg
	if cfg.RedisURL == "" {
		st, err := kvstore.New(ctx, env.NATS.JS, kvstore.Options{Namespace: cfg.Namespace, SeenTTL: cfg.SeenTTL, Replicas: cfg.StreamReplicas})
		if err != nil {
			return nil, fmt.Errorf("nats kv store: %w", err)
		}
		return st, nil
	}
	ropts, err := RedisOptions(cfg)
	if err != nil {
		return nil, err
	}
	client := redis.NewClient(ropts)
	env.closers = append(env.closers, func() { _ = client.Close() })
	pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := client.Ping(pctx).Err(); err != nil {
		return nil, fmt.Errorf("redis %s: %w", ropts.Addr, err)
	}
	st, err := redisstore.New(client, redisstore.Options{Namespace: cfg.Namespace, SeenTTL: cfg.SeenTTL})
	if err != nil {
		return nil, fmt.Errorf("redis store: %w", err)
	}
	return st, nil
}

// RedisOptions turns ESIMFLOW_REDIS_URL — with its ACL user and password, and
// rediss:// for TLS — and the Redis TLS files into client options.
func RedisOptions(cfg config.Config) (*redis.Options, error) {
	ropts, err := redis.ParseURL(cfg.RedisURL)
	if err != nil {
		return nil, fmt.Errorf("ESIMFLOW_REDIS_URL: %w", err)
	}
	if ropts.TLSConfig == nil {
		return ropts, nil // Validate refuses TLS files without rediss://
	}
	if f := cfg.Redis.CAFile; f != "" {
		pem, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("ESIMFLOW_REDIS_TLS_CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ESIMFLOW_REDIS_TLS_CA: no PEM certificate in %s", f)
		}
		ropts.TLSConfig.RootCAs = pool
	}
	if cfg.Redis.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.Redis.CertFile, cfg.Redis.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("ESIMFLOW_REDIS_TLS_CERT: %w", err)
		}
		ropts.TLSConfig.Certificates = []tls.Certificate{cert}
	}
	return ropts, nil
}

// Close releases everything Open opened, in reverse order.
func (env *Env) Close() {
	for i := len(env.closers) - 1; i >= 0; i-- {
		env.closers[i]()
	}
	env.closers = nil
}

// Part is one running piece of a process; it returns when ctx ends.
type Part func(ctx context.Context) error

// Supervise runs the parts until ctx ends or one fails, then stops them all.
func Supervise(ctx context.Context, parts ...Part) error {
	g, ctx := errgroup.WithContext(ctx)
	for _, p := range parts {
		g.Go(func() error { return p(ctx) })
	}
	return g.Wait()
}

// AdminPart serves the internal API on ln, or on cfg.AdminAddr when ln is nil.
func (env *Env) AdminPart(ln net.Listener) Part {
	return func(ctx context.Context) error {
		srv := &http.Server{
			Addr:              env.Cfg.AdminAddr,
			Handler:           env.Admin.Handler(),
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       10 * time.Second,
			WriteTimeout:      30 * time.Second,
			IdleTimeout:       120 * time.Second,
		}
		return httpserve.Run(ctx, srv, ln)
	}
}

// Logger returns the process logger on stderr, JSON or text, at the
// configured level.
func Logger(cfg config.Config) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.LogLevel}
	if cfg.LogText {
		return slog.New(slog.NewTextHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, opts))
}

// Main is a service binary's main: it loads config from the environment,
// wires the process, builds the service (which registers its routes and
// checks), then runs it with the internal API, and exits non-zero with the
// error on failure. SIGINT and SIGTERM stop it gracefully.
func Main(opts Options, build func(env *Env) (Part, error)) {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg, err := config.Load(os.Getenv)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: configuration: %v\n", opts.Name, err)
		os.Exit(2)
	}
	// "process" names the binary; the services it runs add "service" (the
	// all-in-one runs three), so no line carries one key twice.
	log := Logger(cfg).With("process", opts.Name)
	log.Info("starting", "config", cfg)
	tp, shutdownTracing, err := telemetry.Setup(ctx, opts.Name, os.Getenv)
	if err != nil {
		log.Error("start failed", "err", err)
		os.Exit(1)
	}
	defer func() { _ = shutdownTracing(context.WithoutCancel(ctx)) }()
	opts.Tracer = tp
	env, err := Open(ctx, cfg, log, opts)
	if err != nil {
		log.Error("start failed", "err", err)
		os.Exit(1)
	}
	run, err := build(env)
	if err == nil {
		err = Supervise(ctx, env.AdminPart(nil), run)
	}
	env.Close()
	if err != nil {
		log.Error("stopped", "err", err)
		_ = shutdownTracing(context.WithoutCancel(ctx))
		os.Exit(1)
	}
	log.Info("stopped")
}

// layoutWait bounds how long a starting service waits for NATS to answer:
// long enough to ride out a restart of the server or of its cluster's
// leader, short enough that a wrong address surfaces as an exit.
const layoutWait = 2 * time.Minute

// ensureLayout creates or checks the streams and consumers, retrying while
// NATS does not answer (a service started during a NATS restart waits for it
// instead of exiting). A server that answers but keeps a different config
// fails at once: waiting cannot fix that.
func (e *Env) ensureLayout(ctx context.Context, limits stream.Limits, wait bool) error {
	op := func() (struct{}, error) {
		var err error
		e.Events, e.Notify, err = stream.Ensure(ctx, e.NATS.JS, e.Names, limits)
		if errors.Is(err, stream.ErrServerIgnoredSetting) || err != nil && !wait {
			return struct{}{}, backoff.Permanent(err)
		}
		if err != nil {
			e.Log.Warn("jetstream not ready, retrying", "err", err)
		}
		return struct{}{}, err
	}
	_, err := backoff.Retry(ctx, op, backoff.WithBackOff(backoff.NewExponentialBackOff()), backoff.WithMaxElapsedTime(layoutWait))
	return err
}
