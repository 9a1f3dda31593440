// Package service wires a process: config, logger, NATS (external or embedded),
// the JetStream streams and the internal API server. Every binary — the three
// services and the all-in-one — starts through it, so they connect the same
// way and shut down in the same order: HTTP first, consumers next, then the
// store closes, NATS is drained, and the embedded server stops.
//
// It knows no service: each opens its own consumer (Env.Consumer) and, when it
// keeps state, its own store (package storeopen), so ingest links neither
// go-redis nor the KV store.
package service

import (
	"context"
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
	"github.com/esimflow/esimflow/shared/stream"
	"github.com/esimflow/esimflow/shared/telemetry"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"
	"golang.org/x/sync/errgroup"
)

// Env is a wired process: what service Run functions take their deps from.
// A main hands each service its own section of Cfg, never the whole.
type Env struct {
	Cfg    config.Config
	Log    *slog.Logger
	NATS   *natsconn.Conn
	Admin  *admin.Server
	Names  stream.Names
	Tracer trace.TracerProvider

	limits  stream.Limits
	wait    bool // wait for NATS (services), or fail at once (commands)
	closers []func()
}

// Options say what a process needs.
type Options struct {
	Name string // client and log name
	// Embedded starts the embedded server when ESIMFLOW_NATS_URL is empty
	// (natsembed.Start); nil for the separate service binaries, which need an
	// external NATS and so do not link the server.
	Embedded natsconn.StartEmbedded
	// FailFast makes Open fail at once when NATS does not answer, for
	// operator commands; services wait for it (up to layoutWait).
	FailFast bool
	// Tracer traces the services; nil means no tracing.
	Tracer trace.TracerProvider
	// GC is the binary's collector defaults, applied by Main first.
	GC GC
}

// Open connects to NATS, creates or checks the streams and builds the
// internal API server. The process's consumer and store are its own to open
// (Consumer, storeopen.Open).
func Open(ctx context.Context, cfg config.Config, log *slog.Logger, opts Options) (*Env, error) {
	env := &Env{
		Cfg: cfg, Log: log, Names: stream.NewNames(cfg.Namespace),
		Admin: admin.NewWithOptions(admin.Options{
			Token: cfg.Admin.Token, ListenAddr: cfg.Admin.Addr, AllowedHosts: cfg.Admin.AllowedHosts,
			HostCheck: true, RequestHeaderCheck: true,
		}),
		Tracer: telemetry.OrNoop(opts.Tracer), wait: !opts.FailFast,
		limits: stream.Limits{Replicas: cfg.Replicas, EventsMaxAge: cfg.NATS.EventsMaxAge, EventsMaxBytes: cfg.NATS.EventsMaxBytes, MaxDeliver: cfg.MaxDeliver},
	}
	if cfg.Admin.Pprof {
		env.Admin.ServeProfiles()
	}
	nc, err := natsconn.Open(ctx, cfg.NATS, opts.Name, log, opts.Embedded, env.wait)
	if err != nil {
		return nil, err
	}
	env.NATS = nc
	env.OnClose(nc.Close)
	env.Admin.AddCheck("nats", func(context.Context) error {
		if s := nc.NC.Status(); s != nats.CONNECTED {
			return fmt.Errorf("nats %s", s)
		}
		return nil
	})

	err = env.retry(ctx, func() error { return stream.EnsureStreams(ctx, nc.JS, env.Names, env.limits) })
	if err != nil {
		env.Close()
		return nil, fmt.Errorf("jetstream layout: %w", err)
	}
	var streams []string
	for _, sc := range env.Names.StreamConfigs(env.limits) {
		streams = append(streams, sc.Name)
	}
	env.Admin.ServeStatus(nc.JS, streams...)
	return env, nil
}

// Consumer creates or checks the process's durable consumer,
// stream.ProcessorConsumer or stream.NotifierConsumer, waiting for NATS as
// Open does.
func (env *Env) Consumer(ctx context.Context, name string) (jetstream.Consumer, error) {
	var c jetstream.Consumer
	err := env.retry(ctx, func() error {
		var err error
		c, err = stream.EnsureConsumer(ctx, env.NATS.JS, env.Names, env.limits, name)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("jetstream layout: %w", err)
	}
	return c, nil
}

// OnClose registers f to run at Close, before what was opened earlier is
// released: a store closes before NATS drains.
func (env *Env) OnClose(f func()) { env.closers = append(env.closers, f) }

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

// AdminPart serves the internal API on ln, or on ESIMFLOW_ADMIN_ADDR when ln
// is nil.
func (env *Env) AdminPart(ln net.Listener) Part {
	return func(ctx context.Context) error {
		srv := &http.Server{
			Addr:              env.Cfg.Admin.Addr,
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
func Logger(cfg config.Log) *slog.Logger {
	opts := &slog.HandlerOptions{Level: cfg.Level}
	if cfg.Text {
		return slog.New(slog.NewTextHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewJSONHandler(os.Stderr, opts))
}

// Main is a service binary's main: it loads config from the environment,
// wires the process, builds the service (which opens its consumer and store
// and registers its routes and checks), then runs it with the internal API,
// and exits non-zero with the error on failure. SIGINT and SIGTERM stop it
// gracefully.
func Main(opts Options, build func(ctx context.Context, env *Env) (Part, error)) {
	opts.GC.Apply(os.Getenv)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	cfg, err := config.Load(os.Getenv)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s: configuration: %v\n", opts.Name, err)
		os.Exit(2)
	}
	// "process" names the binary; the services it runs add "service" (the
	// all-in-one runs three), so no line carries one key twice.
	log := Logger(cfg.Log).With("process", opts.Name)
	log.Info("starting", "config", cfg)
	if err := cfg.Admin.CheckExposure(); err != nil {
		log.Error("start refused", "err", err)
		os.Exit(2)
	}
	log.Info("internal API", "addr", cfg.Admin.Addr, "access", cfg.Admin.Exposure())
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
	run, err := build(ctx, env)
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

// retry runs op, a step of the JetStream layout, retrying while NATS does not
// answer (a service started during a NATS restart waits for it instead of
// exiting). A server that answers but keeps a different config fails at
// once: waiting cannot fix that. Operator commands do not wait.
func (env *Env) retry(ctx context.Context, op func() error) error {
	step := func() (struct{}, error) {
		err := op()
		if errors.Is(err, stream.ErrServerIgnoredSetting) || err != nil && !env.wait {
			return struct{}{}, backoff.Permanent(err)
		}
		if err != nil {
			env.Log.Warn("jetstream not ready, retrying", "err", err)
		}
		return struct{}{}, err
	}
	_, err := backoff.Retry(ctx, step, backoff.WithBackOff(backoff.NewExponentialBackOff()), backoff.WithMaxElapsedTime(layoutWait))
	return err
}
