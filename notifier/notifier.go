package notifier

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/esimflow/esimflow/notifier/channel"
	"github.com/esimflow/esimflow/notifier/template"
	"github.com/esimflow/esimflow/shared/admin"
	"github.com/esimflow/esimflow/shared/config"
	"github.com/esimflow/esimflow/shared/consume"
	"github.com/esimflow/esimflow/shared/store"
	"github.com/esimflow/esimflow/shared/stream"
	"github.com/esimflow/esimflow/shared/telemetry"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"
)

// Store is what the notifier keeps and reads: claims, the notification log
// and contacts, and the processor's profiles and orders, whose transactionId
// leads to a contact.
type Store interface {
	store.Claims
	store.BatchClaims
	store.NotificationLog
	store.BatchNotificationLog
	store.Contacts
	store.BatchContacts
	store.Parking
	store.BatchParking
	Profile(ctx context.Context, iccid string) (store.Profile, error)
	// ReadState reads a batch's profiles (store.BatchState).
	ReadState(ctx context.Context, snap *store.Snapshot, orderNos, iccids []string) error
	Order(ctx context.Context, orderNo string) (store.Order, error)
	Ping(ctx context.Context) error
}

// Channel sends a rendered message to a customer (see package channel for
// the contract).
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
	Admin     *admin.Server
	Logger    *slog.Logger
	// Channels, when set, are the channels to route among; else New builds
	// them from the configuration (see NewChannels), printing console
	// messages to Console.
	Channels []Channel
	Console  io.Writer
	// Templates render messages (default: built from ESIMFLOW_TEMPLATE_DIR).
	Templates Renderer
	// Resolver finds contacts the store lacks (default: the
	// ESIMFLOW_CONTACT_RESOLVER_URL one, if set).
	Resolver ContactResolver
	// Owner names this instance in claims (default: host-pid-random).
	Owner string
	// Lease is how long a claim is held while sending (default 30s).
	Lease   time.Duration
	Workers int // default: the configuration's NotifyWorkers
	// Tracer traces each intent and send; nil means no tracing.
	Tracer trace.TracerProvider
	// Clock tells the time the quiet hours are read on (default time.Now);
	// tests move it.
	Clock func() time.Time
	// HoldRecheck bounds how long a message held for quiet hours waits
	// before it looks again (default 1h).
	HoldRecheck time.Duration
	// Wake, when set, carries wake-ups (waker): a message waiting for a
	// contact, an order link or a lower warning is looked at again as soon
	// as that is stored. Without it, waiting messages find it on their retry.
	Wake WakeConn
}

// Service is a notifier ready to consume.
type Service struct {
	pipe     *consume.Pipeline
	handle   consume.Handler
	batch    consume.BatchHandler // nil: one intent at a time
	size     int                  // of a batch
	cons     jetstream.Consumer
	workers  int
	checks   []*peerCheck
	channels []Channel
	wake     *waker
	log      *slog.Logger
}

// New builds the notifier and registers its API routes, metrics and
// readiness check, so they are in place before the API serves.
func New(cfg config.Notifier, deps Deps) (*Service, error) {
	if deps.Consumer == nil || deps.Publisher == nil || deps.Store == nil || deps.Admin == nil || deps.Logger == nil {
		return nil, errors.New("notifier: consumer, publisher, store, admin server and logger are required")
	}
	if len(deps.Channels) == 0 && deps.Console == nil {
		return nil, errors.New("notifier: channels, or a console writer to build them from the configuration, are required")
	}
	log := deps.Logger.With("service", "notifier")
	if deps.Owner == "" {
		deps.Owner = defaultOwner()
	}
	if deps.Lease <= 0 {
		deps.Lease = 30 * time.Second
	}
	if deps.Workers <= 0 {
		deps.Workers = max(1, cfg.Workers)
	}

	// Channels, templates and contact sources.
	var err error
	if len(deps.Channels) == 0 {
		if deps.Channels, err = NewChannels(cfg, deps.Console); err != nil {
			return nil, err
		}
	}
	channels := map[string]Channel{}
	for _, ch := range deps.Channels {
		if !channel.Known(ch.Name()) || channels[ch.Name()] != nil {
			return nil, fmt.Errorf("notifier: channel %q unknown or given twice", ch.Name())
		}
		channels[ch.Name()] = failpointChannel(ch, deps.Store, deps.Owner)
	}
	if deps.Templates == nil {
		if deps.Templates, err = template.New(cfg.TemplateDir); err != nil {
			return nil, fmt.Errorf("notifier: %w", err)
		}
	}
	if deps.Resolver == nil && cfg.Resolver.URL != "" {
		if deps.Resolver, err = NewResolverWith(ResolverOptions{URL: cfg.Resolver.URL, Token: cfg.Resolver.Token,
			TTL: cfg.Resolver.TTL, AllowPrivate: cfg.Resolver.AllowPrivate}); err != nil {
			return nil, fmt.Errorf("notifier: %w", err)
		}
	}

	// Customer rules: the channel order, quiet hours, the top-up link.
	if deps.Clock == nil {
		deps.Clock = time.Now
	}
	sendTimeout := cfg.SendTimeout
	if sendTimeout <= 0 {
		sendTimeout = deps.Lease / 2
	}
	quiet, err := newQuietHours(cfg.Quiet, deps.HoldRecheck, deps.Publisher)
	if err != nil {
		return nil, fmt.Errorf("notifier: %w", err)
	}

	// Handler: claim, check staleness and order, find the contact, route,
	// apply preferences and quiet hours, render, try the channels in order
	// until one takes the message, each under its own claim, mark, log; the
	// pipeline acks (or retries, dead-letters) what the handler decided. The
	// chaos suite's failpoints wrap the store and the channels in its builds
	// (failpoints.go), and nothing in others.
	tracer := telemetry.OrNoop(deps.Tracer).Tracer("esimflow/notifier")
	sn := stream.NewNames(cfg.Namespace)
	wake := &waker{conn: deps.Wake, subject: sn.WakeSubject(), queue: sn.Consumer(stream.NotifierConsumer),
		parking: deps.Store, pub: deps.Publisher, ttl: cfg.ContactWait + parkMargin, log: log}
	h := &Handler{
		store:       failpointStore(deps.Store),
		channels:    channels,
		contacts:    contacts{store: deps.Store, resolver: deps.Resolver},
		templates:   deps.Templates,
		locale:      cfg.Locale,
		contactWait: cfg.ContactWait,
		order:       cfg.ChannelOrder,
		sendTimeout: sendTimeout,
		quiet:       quiet,
		topUpURL:    cfg.TopUpURL,
		now:         deps.Clock,
		owner:       deps.Owner,
		lease:       deps.Lease,
		maxDeliver:  cfg.MaxDeliver,
		wake:        wake,
		metrics:     newMetrics(deps.Admin.Registerer()),
		tracer:      tracer,
		log:         log,
	}
	pipe := &consume.Pipeline{
		Kind: deadLetterKind, Names: sn, MaxDeliver: cfg.MaxDeliver, Publisher: deps.Publisher,
		Observe: h.observe, Tracer: tracer, Span: "notifier intent", Log: log,
	}

	// API and readiness: the store, and each channel's peer that can be
	// checked without sending (SMTP: connect, EHLO, TLS, AUTH).
	registerRoutes(deps.Admin, deps.Store, h.preview, wake.announce)
	deps.Admin.AddCheck("notifier_store", deps.Store.Ping)
	checks := peerChecks(deps.Channels)
	for _, c := range checks {
		deps.Admin.AddCheck("notifier_"+c.name, c.Check)
	}
	deps.Admin.WatchConsumer(deps.Consumer)
	log.Info("notifier ready", "channels", names(channels), "owner", deps.Owner, "contact_resolver", deps.Resolver != nil,
		"quiet_hours", cfg.Quiet.On())
	s := &Service{pipe: pipe, handle: h.Handle, cons: deps.Consumer, workers: deps.Workers,
		checks: checks, channels: deps.Channels, wake: wake, log: log}
	if cfg.Batch > 1 {
		// As many intents in flight as workers, in batches (docs/adr/0015).
		s.batch, s.size = h.HandleBatch, cfg.Batch
		s.workers = (deps.Workers + cfg.Batch - 1) / cfg.Batch
	}
	return s, nil
}

// NewChannels builds the channels the configuration asks for, each behind its
// rate limit; the console, writing to console, when none is configured.
func NewChannels(cfg config.Notifier, console io.Writer) ([]Channel, error) {
	var out []Channel
	if cfg.Email.URL != "" {
		e, err := channel.NewEmail(channel.EmailOptions{URL: cfg.Email.URL, From: cfg.Email.From})
		if err != nil {
			return nil, err
		}
		out = append(out, channel.Limit(e, cfg.Email.Rate))
	}
	if cfg.SMS.APIURL != "" {
		s, err := channel.NewSMS(channel.SMSOptions{BaseURL: cfg.SMS.APIURL, AccountSID: cfg.SMS.AccountSID,
			AuthToken: cfg.SMS.AuthToken, From: cfg.SMS.From})
		if err != nil {
			return nil, err
		}
		out = append(out, channel.Limit(s, cfg.SMS.Rate))
	}
	if cfg.WhatsApp.APIURL != "" {
		w, err := channel.NewWhatsApp(channel.WhatsAppOptions{BaseURL: cfg.WhatsApp.APIURL, PhoneNumberID: cfg.WhatsApp.PhoneNumberID,
			Token: cfg.WhatsApp.Token, TemplatePrefix: cfg.WhatsApp.TemplatePrefix})
		if err != nil {
			return nil, err
		}
		out = append(out, channel.Limit(w, cfg.WhatsApp.Rate))
	}
	if cfg.Webhook.URL != "" {
		w, err := channel.NewWebhook(channel.WebhookOptions{URL: cfg.Webhook.URL, Secret: cfg.Webhook.Secret,
			AllowPrivate: cfg.Webhook.AllowPrivate})
		if err != nil {
			return nil, err
		}
		out = append(out, channel.Limit(w, cfg.Webhook.Rate))
	}
	if len(out) == 0 {
		if console == nil {
			return nil, errors.New("notifier: no channel configured and no console to print to")
		}
		out = append(out, channel.NewConsole(console))
	}
	return out, nil
}

// Run checks the channels' peers, then consumes intents until ctx ends and
// lets sends in flight finish. A peer that is down does not stop it (the
// sends wait and retry, readiness says why); a configuration no retry can
// fix does, with the reason.
func (s *Service) Run(ctx context.Context) error {
	defer closeChannels(s.channels)
	checkCtx, cancel := context.WithTimeout(ctx, startupCheckTimeout)
	fatal, down := checkPeers(checkCtx, s.checks)
	cancel()
	if fatal != nil {
		return fmt.Errorf("notifier: %w", fatal)
	}
	if down != nil {
		s.log.Error("channel peer not reachable at start-up; sends retry, readiness reports it", "err", down)
	}
	stop, err := s.wake.listen(ctx)
	if err != nil {
		return fmt.Errorf("notifier: %w", err)
	}
	defer stop()
	if s.batch != nil {
		return s.pipe.RunBatches(ctx, s.cons, s.workers, s.size, s.batch, s.handle)
	}
	return s.pipe.Run(ctx, s.cons, s.workers, s.handle)
}

// parkMargin is how much longer than the contact wait a waiting message
// stays parked: its last retries come after the wait.
const parkMargin = 5 * time.Minute

// startupCheckTimeout bounds the channels' start-up checks.
const startupCheckTimeout = 30 * time.Second

// Run builds a notifier and runs it until ctx ends.
func Run(ctx context.Context, cfg config.Notifier, deps Deps) error {
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
