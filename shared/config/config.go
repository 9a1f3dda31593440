// Package config reads esimflow's settings from ESIMFLOW_* variables, through an
// injected getenv so tests and the CLI never touch the process environment.
//
// Every setting is declared once, in the table of settings.go: its variable,
// default, meaning, whether it is a secret, how it parses, what values make
// sense and the field it fills. That table drives Load, Validate, the redacted
// log of the effective configuration (LogValue) and the reference in
// docs/configuration.md (Reference; a test keeps the file equal to it).
//
// The configuration comes in sections, one per part of the system, so each
// service is handed its own settings and secrets and no other: ingest gets
// Ingest, the processor Processor, the notifier Notifier. The settings the
// parts share (Common) are copied into each of those sections by Load.
package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"strings"
	"time"
)

// Config is the validated configuration of a process: its sections.
type Config struct {
	Common
	Log       Log
	Admin     Admin
	NATS      NATS
	Store     Store
	Ingest    Ingest
	Processor Processor
	Notifier  Notifier
	CLI       CLI
}

// Common are the settings every part reads: the names and shape of the
// JetStream layout and the store's keys.
type Common struct {
	Namespace string
	// Replicas of every stream and KV bucket.
	Replicas int
	// MaxDeliver is how many deliveries an event or intent gets before it
	// is dead-lettered: the consumers' setting, and the handlers' "last
	// delivery".
	MaxDeliver int
	// ProvidersDir holds the mapping files of providers beyond the
	// built-in ones (shared/provider); "" = none.
	ProvidersDir string
}

// Log is how a process logs.
type Log struct {
	Level slog.Level
	Text  bool // text for people, else JSON
}

// Admin is the internal API every process serves.
type Admin struct {
	Addr  string
	Token string // secret; empty = no authentication
	Pprof bool
	// Insecure lets the API listen beyond loopback without a token: an
	// explicit opt-out, for a network the operator protects otherwise.
	Insecure bool
	// AllowedHosts are Host names the API answers besides loopback names,
	// IP literals and its listen host (against DNS rebinding); "*" = any.
	AllowedHosts []string
}

// NATS is the connection (external, or the embedded server) and the stream
// limits a deployment chooses.
type NATS struct {
	URL string // secret (it may carry a password); empty = embedded
	// At most one of a credentials file or an nkey seed file (a user and
	// password, or a token, go in URL), and TLS files.
	CredsFile, NkeyFile       string
	CAFile, CertFile, KeyFile string

	DataDir      string // embedded JetStream storage
	EmbeddedAddr string // empty = in-process connections only
	// The embedded listener's user (nkey seed file; empty = generated into
	// DataDir) and TLS files (required beyond loopback).
	EmbeddedNkeyFile                string
	EmbeddedTLSCert, EmbeddedTLSKey string
	// SyncEvery is the embedded server's fsync interval; 0 = fsync before
	// every ack (ESIMFLOW_EMBEDDED_SYNC=always).
	SyncEvery time.Duration

	EventsMaxAge   time.Duration
	EventsMaxBytes int64
}

// Store is where state is kept: Redis when URL is set, else NATS KV.
type Store struct {
	Common
	URL string // secret (it may carry a password)
	// TLS files of a rediss:// connection; the ACL user and password go in
	// URL.
	CAFile, CertFile, KeyFile string
	// SeenTTL is how long a processed event's dedupe key is remembered.
	SeenTTL time.Duration
}

// Ingest is the webhook receiver's section.
type Ingest struct {
	Common
	HTTPAddr       string
	MaxBody        int64
	PublishTimeout time.Duration
	// Sender verification: path tokens, Standard Webhooks secrets, the
	// generic HMAC mode, an allowlist; all secrets but the allowlist.
	Tokens            []string
	HMACSecrets       []string
	HMACTolerance     time.Duration
	SignatureHeader   string
	SignatureSecrets  []string
	SignatureEncoding string
	AllowCIDRs        []netip.Prefix
	TrustedProxies    []netip.Prefix
	// ProviderSecrets are provider=secret pairs: the key of each
	// provider's own signature (ProviderSecretsOf); SNSHosts the hosts an
	// SNS signing certificate and SubscribeURL may be on.
	ProviderSecrets []string
	SNSHosts        []string
	// Insecure lets ingest listen beyond loopback with no sender
	// verification: an explicit opt-out.
	Insecure  bool
	RateLimit float64
	RateBurst int
}

// Processor is the processor's section.
type Processor struct {
	Common
	Batch             int
	LowDataThresholds []int
	// TopUps and Renewals enable the topped_up and renewed messages
	// (off by default: not every reseller wants to send them).
	TopUps, Renewals bool
	// MaxEventSkew is how far past now an event time may be; a later one is
	// dead-lettered rather than pin a profile's state.
	MaxEventSkew time.Duration
	// Reconcile is the poller of the provider's query API; off unless its
	// URL is set.
	Reconcile Reconcile
}

// Reconcile configures the reconciler (docs/design.md, "Reconciler"): the
// eSIM Access–compatible query API it polls and how often.
type Reconcile struct {
	URL        string
	AccessCode string
	Secret     string // secret
	// Stale is how long an entity whose state differs from the provider's
	// may stay silent before the poll's events are published; Interval how
	// often the provider's orders are swept; Lookback how far back the
	// sweep asks for orders.
	Stale, Interval, Lookback time.Duration
	// Rate is the query calls per second all instances together may make.
	Rate int
}

// On reports whether the reconciler runs.
func (r Reconcile) On() bool { return r.URL != "" }

// Notifier is the notifier's section: channels, contacts and templates.
type Notifier struct {
	Common
	Email       Email
	SMS         SMS
	WhatsApp    WhatsApp
	Webhook     Webhook
	Resolver    Resolver
	Workers     int
	Batch       int
	Locale      string
	ContactWait time.Duration
	TemplateDir string
	// ChannelOrder is the order channels are tried in for a contact that
	// names none: the first that takes the message delivers it.
	ChannelOrder []string
	// SendTimeout bounds one channel's try; past it the message moves on.
	SendTimeout time.Duration
	Quiet       QuietHours
	// TopUpURL is the reseller's top-up link, with {iccid}, {orderNo} and
	// {transactionId} filled per message; empty: none.
	TopUpURL string
}

// QuietHours hold non-critical messages while it is night on the
// customer's clock.
type QuietHours struct {
	Window ClockRange // none: quiet hours are off
	// TimeZone (IANA) is the clock of customers whose contact names none.
	TimeZone string
	// Critical are the template kinds sent at once even in quiet hours.
	Critical []string
}

// On reports whether quiet hours are configured.
func (q QuietHours) On() bool { return q.Window.From != q.Window.To }

// ClockRange is a span of the day in minutes after midnight, From
// included, To not: 22:00-08:00 is 1320 and 480, across midnight.
type ClockRange struct{ From, To int }

// WhatsApp is the WhatsApp channel; on when APIURL is set.
type WhatsApp struct {
	APIURL, PhoneNumberID string
	Token                 string // secret
	TemplatePrefix        string
	Rate                  float64
}

// Email is the email channel; on when URL is set.
type Email struct {
	URL  string // secret
	From string
	Rate float64
}

// SMS is the SMS channel; on when APIURL is set.
type SMS struct {
	APIURL, AccountSID string
	AuthToken          string // secret
	From               string
	Rate               float64
}

// Webhook is the signed outbound webhook channel; on when URL is set.
type Webhook struct {
	URL          string
	Secret       string // secret
	AllowPrivate bool
	Rate         float64
}

// Resolver is the contact resolver; on when URL is set.
type Resolver struct {
	URL          string
	Token        string // secret
	TTL          time.Duration
	AllowPrivate bool // lets the resolver reach loopback and private addresses
}

// CLI is what the operator commands read.
type CLI struct {
	// APIURLs are the internal APIs the commands talk to, one per service
	// when they run apart.
	APIURLs []string
}

// Load reads every setting through getenv (os.Getenv in production), applying
// defaults, and validates the result.
func Load(getenv func(string) string) (Config, error) {
	var c Config
	var errs []error
	for _, s := range c.settings() {
		v := strings.TrimSpace(getenv(s.Env))
		if v == "" {
			v = s.Default
		}
		if err := s.field.set(v); err != nil {
			errs = append(errs, fmt.Errorf("%s=%q: %w", s.Env, v, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return Config{}, err
	}
	c.share()
	return c, c.Validate()
}

// ProviderSecretsOf returns the secrets of ESIMFLOW_PROVIDER_SECRETS by
// provider, in their order (several per provider, for rotation).
func (in Ingest) ProviderSecretsOf() map[string][]string {
	out := map[string][]string{}
	for _, pair := range in.ProviderSecrets {
		name, secret, _ := strings.Cut(pair, "=")
		out[strings.TrimSpace(name)] = append(out[strings.TrimSpace(name)], secret)
	}
	return out
}

// share copies the common settings into the sections that carry them.
func (c *Config) share() {
	c.Store.Common, c.Ingest.Common, c.Processor.Common, c.Notifier.Common = c.Common, c.Common, c.Common, c.Common
}

// Validate checks values that parse but make no sense: each setting on its
// own (the table's checks), then the settings that go together.
func (c Config) Validate() error {
	var errs []error
	for _, s := range c.settings() {
		if why := s.field.check(); why != "" {
			errs = append(errs, fmt.Errorf("%s: %s", s.Env, why))
		}
	}
	errs = append(errs, c.NATS.validate()...)
	errs = append(errs, c.Store.validate()...)
	errs = append(errs, c.Ingest.validate()...)
	errs = append(errs, c.Notifier.validate()...)
	errs = append(errs, c.Processor.Reconcile.validate()...)
	return errors.Join(errs...)
}

// LogValue lists the effective settings by section, secrets redacted: URLs
// keep their hosts, other secrets show only that they are set.
func (c Config) LogValue() slog.Value {
	var groups []slog.Attr
	for _, sec := range c.sections() {
		var attrs []slog.Attr
		for _, s := range sec.Settings {
			if v := s.logged(); v != "" {
				attrs = append(attrs, slog.String(strings.ToLower(strings.TrimPrefix(s.Env, "ESIMFLOW_")), v))
			}
		}
		groups = append(groups, slog.Attr{Key: sec.Key, Value: slog.GroupValue(attrs...)})
	}
	groups = append(groups, slog.Any("channels", c.Notifier.Channels()))
	return slog.GroupValue(groups...)
}

// Channels names the notifier channels the settings configure, in routing
// order; console alone when none is.
func (n Notifier) Channels() []string {
	var out []string
	if n.Email.URL != "" {
		out = append(out, "email")
	}
	if n.SMS.APIURL != "" {
		out = append(out, "sms")
	}
	if n.WhatsApp.APIURL != "" {
		out = append(out, "whatsapp")
	}
	if n.Webhook.URL != "" {
		out = append(out, "webhook")
	}
	if len(out) == 0 {
		out = append(out, "console")
	}
	return out
}
