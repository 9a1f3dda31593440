// Package allinone runs the whole of esimflow in one process: an embedded NATS
// server with JetStream (unless ESIMFLOW_NATS_URL names one), the NATS KV store
// (unless ESIMFLOW_REDIS_URL names a Redis), ingest, processor and notifier
// (the console channel unless email, SMS or a webhook is configured), and one
// internal API serving every route.
package allinone

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"

	"github.com/esimflow/esimflow/cmd/esimflow/console"
	"github.com/esimflow/esimflow/ingest"
	"github.com/esimflow/esimflow/notifier"
	"github.com/esimflow/esimflow/processor"
	"github.com/esimflow/esimflow/shared/config"
	"github.com/esimflow/esimflow/shared/natsembed"
	"github.com/esimflow/esimflow/shared/service"
	"github.com/esimflow/esimflow/shared/storeopen"
	"github.com/esimflow/esimflow/shared/stream"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"
)

// Deps are what Run needs from its caller.
type Deps struct {
	Logger *slog.Logger
	// Messages is where the console channel prints customer messages (when
	// no other channel is configured).
	Messages io.Writer
	// Banner is where the "POST here" lines go (the terminal).
	Banner io.Writer
	// HTTP and Admin, when set, are served instead of listening on the
	// configured addresses (tests pass ports they already hold).
	HTTP, Admin net.Listener
	// Tracer traces every service; nil means no tracing.
	Tracer trace.TracerProvider
}

// Run starts everything and blocks until ctx ends, then stops in order: HTTP
// first, consumers next, then NATS is drained and the embedded server stops.
func Run(ctx context.Context, cfg config.Config, deps Deps) error {
	log := deps.Logger
	env, err := service.Open(ctx, cfg, log, service.Options{Name: "esimflow", Embedded: natsembed.Start, Tracer: deps.Tracer})
	if err != nil {
		return err
	}
	defer env.Close()
	events, err := env.Consumer(ctx, stream.ProcessorConsumer)
	if err != nil {
		return err
	}
	intents, err := env.Consumer(ctx, stream.NotifierConsumer)
	if err != nil {
		return err
	}
	st, closeStore, err := storeopen.Open(ctx, cfg.Store, env.NATS.JS)
	if err != nil {
		return err
	}
	env.OnClose(closeStore)

	httpLn, adminLn, err := listen(cfg, deps)
	if err != nil {
		return err
	}
	// Judged on the address actually listened on: an internal API beyond
	// loopback needs its token.
	exposed := cfg.Admin
	exposed.Addr = adminLn.Addr().String()
	if err := exposed.CheckExposure(); err != nil {
		httpLn.Close()
		adminLn.Close()
		return err
	}
	log.Info("internal API", "addr", exposed.Addr, "access", exposed.Exposure())
	fmt.Fprintf(deps.Banner, "esimflow is running.\n  POST webhooks to http://%s/webhooks/esim\n  internal API at  http://%s (/v1/orders/{orderNo}, /v1/profiles/{iccid}, /v1/contacts/{transactionId}, /v1/notifications?iccid=, /v1/dlq, /metrics)\n  console at       http://%s/console/\n  data in %s — Ctrl-C stops cleanly\n",
		display(httpLn.Addr()), display(adminLn.Addr()), displayHost(adminLn.Addr()), storageOf(cfg))

	// Build every service first, each from its own section: their routes and
	// readiness checks are in place before the API answers /readyz.
	eventsPub, err := batchPublisher(ctx, cfg, env.Names.Stream(stream.Events), env.NATS.JS)
	if err != nil {
		return err
	}
	intentsPub, err := batchPublisher(ctx, cfg, env.Names.Stream(stream.Notify), env.NATS.JS)
	if err != nil {
		return err
	}
	in, err := ingest.New(cfg.Ingest, ingest.Deps{Publisher: eventsPub, Admin: env.Admin, Logger: log, Listener: httpLn, Tracer: env.Tracer})
	if err != nil {
		return err
	}
	proc, err := processor.New(cfg.Processor, processor.Deps{
		Consumer: events, Publisher: intentsPub, Streams: env.NATS.JS, Subscriber: env.NATS.NC, Wake: env.NATS.NC,
		Store: st, Admin: env.Admin, Logger: log, Tracer: env.Tracer,
	})
	if err != nil {
		return err
	}
	notify, err := notifier.New(cfg.Notifier, notifier.Deps{
		Consumer: intents, Publisher: env.NATS.JS, Store: st,
		Console: deps.Messages, Admin: env.Admin, Logger: log, Tracer: env.Tracer, Wake: env.NATS.NC,
	})
	if err != nil {
		return err
	}
	// The console reads and changes state only through the routes just
	// registered, called in-process with the operator's token.
	con, err := console.New(console.Options{API: env.Admin.Handler(), TokenRequired: cfg.Admin.Token != "", Logger: log})
	if err != nil {
		return err
	}
	con.Register(env.Admin)
	return service.Supervise(ctx, env.AdminPart(adminLn), in.Run, proc.Run, notify.Run)
}

// publisher is what ingest and the processor publish with.
type publisher interface {
	ingest.Publisher
	processor.Publisher
}

// batchPublisher is what ingest publishes events with, and the processor
// intents. The embedded server fsyncing before every ack (the default)
// stores each message with an fsync of its own; there, concurrent
// publishes to the stream share atomic batches, one fsync each
// (docs/adr/0017), and each publisher is still answered only once its
// message is stored. Elsewhere — an interval, an external NATS, which
// fsyncs on its own schedule or replicates instead — a batch's staging
// would cost more than it saves: every message is published alone.
func batchPublisher(ctx context.Context, cfg config.Config, name string, js jetstream.JetStream) (publisher, error) {
	if cfg.NATS.URL != "" || cfg.NATS.SyncEvery != 0 {
		return js, nil
	}
	p, err := stream.NewBatchPublisher(ctx, js, name)
	if err != nil {
		return nil, err
	}
	return p, nil
}

func listen(cfg config.Config, deps Deps) (httpLn, adminLn net.Listener, err error) {
	httpLn, adminLn = deps.HTTP, deps.Admin
	if httpLn == nil {
		if httpLn, err = net.Listen("tcp", cfg.Ingest.HTTPAddr); err != nil {
			return nil, nil, fmt.Errorf("listen ESIMFLOW_HTTP_ADDR %s: %w", cfg.Ingest.HTTPAddr, err)
		}
	}
	if adminLn == nil {
		if adminLn, err = net.Listen("tcp", cfg.Admin.Addr); err != nil {
			httpLn.Close()
			return nil, nil, fmt.Errorf("listen ESIMFLOW_ADMIN_ADDR %s: %w", cfg.Admin.Addr, err)
		}
	}
	return httpLn, adminLn, nil
}

// display turns a listen address into one a curl on this machine can use,
// and says when it listens on every interface: the banner must not suggest
// loopback for a port the network reaches.
func display(a net.Addr) string {
	host, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		return net.JoinHostPort("127.0.0.1", port) + " (listening on every interface)"
	}
	return net.JoinHostPort(host, port)
}

// displayHost is display without the remark, for a URL.
func displayHost(a net.Addr) string {
	d, _, _ := strings.Cut(display(a), " ")
	return d
}

func storageOf(cfg config.Config) string {
	nats, st := "embedded NATS under "+cfg.NATS.DataDir, "NATS KV"
	if cfg.NATS.URL != "" {
		nats = "NATS at " + config.RedactURLs(cfg.NATS.URL)
	}
	if cfg.Store.URL != "" {
		st = "Redis"
	}
	return nats + ", state in " + st
}
