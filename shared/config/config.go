// Package config reads esimflow's settings from ESIMFLOW_* variables, through an
// injected getenv so tests and the CLI never touch the process environment.
//
// Settings lists every variable with its default and meaning; the README's
// configuration table is checked against it, so the two cannot drift.
package config

import (
	"encoding/base64"
	"errors"
	"fmt"
	"log/slog"
	"net/mail"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Setting documents one environment variable.
type Setting struct {
	Env     string
	Default string
	Meaning string
	Secret  bool
}

// Settings is every variable Load reads, in README order.
var Settings = []Setting{
	{Env: "ESIMFLOW_NATS_URL", Meaning: "NATS to use, comma-separated for a cluster (`nats://user:pass@host:4222`, `tls://…`); empty = embedded server", Secret: true},
	{Env: "ESIMFLOW_NATS_CREDS", Meaning: "NATS credentials file (user JWT and nkey seed, as `nsc` writes it)"},
	{Env: "ESIMFLOW_NATS_NKEY", Meaning: "NATS nkey seed file (a user the server lists by public nkey)"},
	{Env: "ESIMFLOW_NATS_TLS_CA", Meaning: "PEM file of the CA that signed the NATS servers' certificates (implies TLS)"},
	{Env: "ESIMFLOW_NATS_TLS_CERT", Meaning: "PEM client certificate for NATS mutual TLS (with `ESIMFLOW_NATS_TLS_KEY`)"},
	{Env: "ESIMFLOW_NATS_TLS_KEY", Meaning: "PEM private key of `ESIMFLOW_NATS_TLS_CERT`"},
	{Env: "ESIMFLOW_REDIS_URL", Meaning: "Redis to use (`redis://user:pass@host:6379/0`, or `rediss://` for TLS); empty = NATS KV store", Secret: true},
	{Env: "ESIMFLOW_REDIS_TLS_CA", Meaning: "PEM file of the CA that signed Redis's certificate (`rediss://` only; default: the system's roots)"},
	{Env: "ESIMFLOW_REDIS_TLS_CERT", Meaning: "PEM client certificate for Redis (`tls-auth-clients yes`), with `ESIMFLOW_REDIS_TLS_KEY`"},
	{Env: "ESIMFLOW_REDIS_TLS_KEY", Meaning: "PEM private key of `ESIMFLOW_REDIS_TLS_CERT`"},
	{Env: "ESIMFLOW_HTTP_ADDR", Default: ":8080", Meaning: "webhook receiver: `POST /webhooks/esim` (also `/api/webhooks/esim`)"},
	{Env: "ESIMFLOW_ADMIN_ADDR", Default: ":8081", Meaning: "internal API, `/healthz`, `/readyz`, `/metrics`"},
	{Env: "ESIMFLOW_DATA_DIR", Default: "./data", Meaning: "embedded JetStream storage"},
	{Env: "ESIMFLOW_EMBEDDED_NATS_ADDR", Meaning: "`host:port` the embedded NATS listens on; empty = in-process connections only"},
	{Env: "ESIMFLOW_EMBEDDED_SYNC", Default: "always", Meaning: "embedded JetStream fsync: `always` (fsync before every ack) or an interval such as `2m` (faster; a power loss can lose the last interval's acked events)"},
	{Env: "ESIMFLOW_NAMESPACE", Meaning: "prefix for stream, consumer, subject, KV and Redis key names"},
	{Env: "ESIMFLOW_STREAM_REPLICAS", Default: "1", Meaning: "replicas of every stream and KV bucket (3 on a cluster)"},
	{Env: "ESIMFLOW_EVENTS_MAX_AGE", Default: "720h", Meaning: "how long `ESIM_EVENTS` keeps events (the replay horizon); 0 = forever"},
	{Env: "ESIMFLOW_EVENTS_MAX_BYTES", Default: "-1", Meaning: "size limit of `ESIM_EVENTS`; when full, ingest answers 503; -1 = none"},
	{Env: "ESIMFLOW_SEEN_TTL", Default: "168h", Meaning: "how long the processor remembers a processed event's dedupe key"},
	{Env: "ESIMFLOW_MAX_DELIVER", Default: "10", Meaning: "deliveries of an event before it goes to `ESIM_DLQ`"},
	{Env: "ESIMFLOW_PROCESSOR_BATCH", Default: "32", Meaning: "events a processor worker takes from its pull at once, merged with one read and one write of the state it touches; 1 = one at a time (docs/adr/0004, 0005)"},
	{Env: "ESIMFLOW_PPROF", Default: "false", Meaning: "`true` serves Go profiles (`/debug/pprof/`) on the admin port, behind the admin token when one is set"},
	{Env: "ESIMFLOW_ADMIN_TOKEN", Meaning: "when set, the internal API needs `Authorization: Bearer <token>`", Secret: true},
	{Env: "ESIMFLOW_INGEST_TOKENS", Meaning: "comma-separated path tokens: `POST /webhooks/esim/{token}` (several, for rotation)", Secret: true},
	{Env: "ESIMFLOW_INGEST_HMAC_SECRETS", Meaning: "comma-separated Standard Webhooks secrets (`whsec_…`): `webhook-id`, `webhook-timestamp`, `webhook-signature` required", Secret: true},
	{Env: "ESIMFLOW_INGEST_HMAC_TOLERANCE", Default: "5m", Meaning: "how far a Standard Webhooks timestamp may be from now (replay window)"},
	{Env: "ESIMFLOW_INGEST_SIGNATURE_HEADER", Meaning: "generic HMAC-SHA256 mode: the header carrying the body's signature (e.g. `X-Signature`)"},
	{Env: "ESIMFLOW_INGEST_SIGNATURE_SECRETS", Meaning: "comma-separated secrets for the generic HMAC mode", Secret: true},
	{Env: "ESIMFLOW_INGEST_SIGNATURE_ENCODING", Default: "hex", Meaning: "generic HMAC mode: `hex` or `base64` (an optional `sha256=` prefix is accepted)"},
	{Env: "ESIMFLOW_INGEST_ALLOW_CIDRS", Meaning: "comma-separated sender allowlist (CIDRs or addresses)"},
	{Env: "ESIMFLOW_INGEST_TRUSTED_PROXIES", Meaning: "comma-separated CIDRs of proxies whose `X-Forwarded-For` is believed"},
	{Env: "ESIMFLOW_INGEST_RATE_LIMIT", Default: "0", Meaning: "requests per second allowed per sender IP (429 beyond); 0 = no limit"},
	{Env: "ESIMFLOW_INGEST_RATE_BURST", Default: "50", Meaning: "burst allowed per sender IP above the rate"},
	{Env: "ESIMFLOW_INGEST_MAX_BODY", Default: "262144", Meaning: "bytes; larger bodies get 413"},
	{Env: "ESIMFLOW_INGEST_PUBLISH_TIMEOUT", Default: "2s", Meaning: "how long ingest waits for the JetStream ack before answering 503"},
	{Env: "ESIMFLOW_LOW_DATA_THRESHOLDS", Default: "80,100", Meaning: "usage percents that notify"},
	{Env: "ESIMFLOW_SMTP_URL", Meaning: "email channel: `smtp://user:pass@host:587` (STARTTLS when the server offers it) or `smtps://user:pass@host:465` (implicit TLS); empty = no email", Secret: true},
	{Env: "ESIMFLOW_EMAIL_FROM", Meaning: "sender of customer emails (`Shop <care@shop.example>`); required with `ESIMFLOW_SMTP_URL`"},
	{Env: "ESIMFLOW_EMAIL_RATE", Default: "10", Meaning: "emails per second, per notifier instance; 0 = unlimited"},
	{Env: "ESIMFLOW_SMS_API_URL", Meaning: "SMS channel: base URL of a Twilio-compatible REST API (the part before `/2010-04-01/Accounts/…`); empty = no SMS"},
	{Env: "ESIMFLOW_SMS_ACCOUNT_SID", Meaning: "SMS account SID (basic-auth user and part of the API path)"},
	{Env: "ESIMFLOW_SMS_AUTH_TOKEN", Meaning: "SMS auth token (basic-auth password)", Secret: true},
	{Env: "ESIMFLOW_SMS_FROM", Meaning: "SMS sender: an E.164 number, or a messaging service SID (`MG…`)"},
	{Env: "ESIMFLOW_SMS_RATE", Default: "1", Meaning: "SMS per second, per notifier instance; 0 = unlimited"},
	{Env: "ESIMFLOW_NOTIFY_WEBHOOK_URL", Meaning: "signed outbound webhook channel: the reseller's endpoint (`https://…`); empty = none"},
	{Env: "ESIMFLOW_NOTIFY_WEBHOOK_SECRET", Meaning: "Standard Webhooks signing secret (`whsec_` + base64); required with the webhook URL", Secret: true},
	{Env: "ESIMFLOW_NOTIFY_WEBHOOK_ALLOW_PRIVATE", Default: "false", Meaning: "`true` lets the webhook reach loopback, private and link-local addresses (refused by default, against SSRF)"},
	{Env: "ESIMFLOW_NOTIFY_WEBHOOK_RATE", Default: "20", Meaning: "webhook calls per second, per notifier instance; 0 = unlimited"},
	{Env: "ESIMFLOW_NOTIFY_WORKERS", Default: "32", Meaning: "intents a notifier handles at once: each waits on store round trips and its channel, so more than the cores; channel rate limits still apply; 1 = one at a time"},
	{Env: "ESIMFLOW_NOTIFY_LOCALE", Default: "en", Meaning: "locale of messages to customers whose contact has none (templates fall back to English)"},
	{Env: "ESIMFLOW_CONTACT_WAIT", Default: "15m", Meaning: "how long a message waits for its customer's contact (the checkout may register it late) before it goes to `ESIM_DLQ`"},
	{Env: "ESIMFLOW_CONTACT_RESOLVER_URL", Meaning: "optional `GET` for contacts not registered through the API, e.g. `https://shop.example/esim-contacts/{transactionId}` (also `{orderNo}`, `{iccid}`); 404 = no contact"},
	{Env: "ESIMFLOW_CONTACT_RESOLVER_TOKEN", Meaning: "sent to the resolver as `Authorization: Bearer <token>`", Secret: true},
	{Env: "ESIMFLOW_CONTACT_RESOLVER_TTL", Default: "10m", Meaning: "how long a contact the resolver returned is cached"},
	{Env: "ESIMFLOW_TEMPLATE_DIR", Meaning: "directory of message templates (`<locale>/<kind>.tmpl`) that override the built-in ones"},
	{Env: "ESIMFLOW_LOG_LEVEL", Default: "info", Meaning: "`debug`, `info`, `warn` or `error`"},
	{Env: "ESIMFLOW_LOG_FORMAT", Default: "json", Meaning: "`json` (for log collectors) or `text` (for people; `make run` uses it)"},
	{Env: "ESIMFLOW_API_URL", Default: "http://127.0.0.1:8081", Meaning: "internal API the operator commands (`esimflow dlq`) talk to; `--api` overrides it"},
}

// Config is the validated configuration of every service.
type Config struct {
	NATSURL             string
	NATS                NATSSecurity
	RedisURL            string
	Redis               RedisTLS
	HTTPAddr            string
	AdminAddr           string
	DataDir             string
	EmbeddedNATSAddr    string
	EmbeddedSyncAlways  bool
	EmbeddedSyncEvery   time.Duration
	Namespace           string
	StreamReplicas      int
	EventsMaxAge        time.Duration
	EventsMaxBytes      int64
	SeenTTL             time.Duration
	MaxDeliver          int
	ProcessorBatch      int
	AdminToken          string
	Pprof               bool
	IngestMaxBody       int64
	IngestTokens        []string
	IngestHMACSecrets   []string
	IngestHMACTolerance time.Duration
	SignatureHeader     string
	SignatureSecrets    []string
	SignatureEncoding   string
	AllowCIDRs          []netip.Prefix
	TrustedProxies      []netip.Prefix
	RateLimit           float64
	RateBurst           int
	PublishTimeout      time.Duration
	LowDataThresholds   []int
	LogLevel            slog.Level
	LogText             bool
	APIURL              string

	// Notifier channels, contacts and templates.
	SMTPURL                   string
	EmailFrom                 string
	EmailRate                 float64
	SMSAPIURL                 string
	SMSAccountSID             string
	SMSAuthToken              string
	SMSFrom                   string
	SMSRate                   float64
	NotifyWebhookURL          string
	NotifyWebhookSecret       string
	NotifyWebhookAllowPrivate bool
	NotifyWebhookRate         float64
	NotifyLocale              string
	NotifyWorkers             int
	ContactWait               time.Duration
	ContactResolverURL        string
	ContactResolverToken      string
	ContactResolverTTL        time.Duration
	TemplateDir               string
}

// NATSSecurity is how esimflow proves itself to an external NATS and checks
// the server: at most one of a credentials file or an nkey seed file (a user
// and password, or a token, go in the URL), and TLS files.
type NATSSecurity struct {
	CredsFile, NkeyFile       string
	CAFile, CertFile, KeyFile string
}

// RedisTLS are the TLS files of a rediss:// connection; the ACL user and
// password go in the URL.
type RedisTLS struct {
	CAFile, CertFile, KeyFile string
}

// Load reads every setting through getenv (os.Getenv in production), applying
// defaults, and validates the result.
func Load(getenv func(string) string) (Config, error) {
	get := func(env string) string {
		if v := strings.TrimSpace(getenv(env)); v != "" {
			return v
		}
		for _, s := range Settings {
			if s.Env == env {
				return s.Default
			}
		}
		panic("config: undocumented setting " + env) // a programming error, caught by tests
	}
	p := parser{}
	c := Config{
		NATSURL: get("ESIMFLOW_NATS_URL"),
		NATS: NATSSecurity{
			CredsFile: get("ESIMFLOW_NATS_CREDS"),
			NkeyFile:  get("ESIMFLOW_NATS_NKEY"),
			CAFile:    get("ESIMFLOW_NATS_TLS_CA"),
			CertFile:  get("ESIMFLOW_NATS_TLS_CERT"),
			KeyFile:   get("ESIMFLOW_NATS_TLS_KEY"),
		},
		RedisURL: get("ESIMFLOW_REDIS_URL"),
		Redis: RedisTLS{
			CAFile:   get("ESIMFLOW_REDIS_TLS_CA"),
			CertFile: get("ESIMFLOW_REDIS_TLS_CERT"),
			KeyFile:  get("ESIMFLOW_REDIS_TLS_KEY"),
		},
		HTTPAddr:            get("ESIMFLOW_HTTP_ADDR"),
		AdminAddr:           get("ESIMFLOW_ADMIN_ADDR"),
		DataDir:             get("ESIMFLOW_DATA_DIR"),
		EmbeddedNATSAddr:    get("ESIMFLOW_EMBEDDED_NATS_ADDR"),
		Namespace:           get("ESIMFLOW_NAMESPACE"),
		StreamReplicas:      p.int("ESIMFLOW_STREAM_REPLICAS", get),
		EventsMaxAge:        p.duration("ESIMFLOW_EVENTS_MAX_AGE", get),
		EventsMaxBytes:      int64(p.int("ESIMFLOW_EVENTS_MAX_BYTES", get)),
		SeenTTL:             p.duration("ESIMFLOW_SEEN_TTL", get),
		ProcessorBatch:      p.int("ESIMFLOW_PROCESSOR_BATCH", get),
		MaxDeliver:          p.int("ESIMFLOW_MAX_DELIVER", get),
		AdminToken:          get("ESIMFLOW_ADMIN_TOKEN"),
		Pprof:               p.bool("ESIMFLOW_PPROF", get),
		IngestMaxBody:       int64(p.int("ESIMFLOW_INGEST_MAX_BODY", get)),
		IngestTokens:        list(get("ESIMFLOW_INGEST_TOKENS")),
		IngestHMACSecrets:   list(get("ESIMFLOW_INGEST_HMAC_SECRETS")),
		IngestHMACTolerance: p.duration("ESIMFLOW_INGEST_HMAC_TOLERANCE", get),
		SignatureHeader:     get("ESIMFLOW_INGEST_SIGNATURE_HEADER"),
		SignatureSecrets:    list(get("ESIMFLOW_INGEST_SIGNATURE_SECRETS")),
		SignatureEncoding:   get("ESIMFLOW_INGEST_SIGNATURE_ENCODING"),
		AllowCIDRs:          p.prefixes("ESIMFLOW_INGEST_ALLOW_CIDRS", get),
		TrustedProxies:      p.prefixes("ESIMFLOW_INGEST_TRUSTED_PROXIES", get),
		RateLimit:           p.float("ESIMFLOW_INGEST_RATE_LIMIT", get),
		RateBurst:           p.int("ESIMFLOW_INGEST_RATE_BURST", get),
		PublishTimeout:      p.duration("ESIMFLOW_INGEST_PUBLISH_TIMEOUT", get),
		LowDataThresholds:   p.ints("ESIMFLOW_LOW_DATA_THRESHOLDS", get),
		APIURL:              get("ESIMFLOW_API_URL"),

		SMTPURL:                   get("ESIMFLOW_SMTP_URL"),
		EmailFrom:                 get("ESIMFLOW_EMAIL_FROM"),
		EmailRate:                 p.float("ESIMFLOW_EMAIL_RATE", get),
		SMSAPIURL:                 get("ESIMFLOW_SMS_API_URL"),
		SMSAccountSID:             get("ESIMFLOW_SMS_ACCOUNT_SID"),
		SMSAuthToken:              get("ESIMFLOW_SMS_AUTH_TOKEN"),
		SMSFrom:                   get("ESIMFLOW_SMS_FROM"),
		SMSRate:                   p.float("ESIMFLOW_SMS_RATE", get),
		NotifyWebhookURL:          get("ESIMFLOW_NOTIFY_WEBHOOK_URL"),
		NotifyWebhookSecret:       get("ESIMFLOW_NOTIFY_WEBHOOK_SECRET"),
		NotifyWebhookAllowPrivate: p.bool("ESIMFLOW_NOTIFY_WEBHOOK_ALLOW_PRIVATE", get),
		NotifyWebhookRate:         p.float("ESIMFLOW_NOTIFY_WEBHOOK_RATE", get),
		NotifyLocale:              get("ESIMFLOW_NOTIFY_LOCALE"),
		NotifyWorkers:             p.int("ESIMFLOW_NOTIFY_WORKERS", get),
		ContactWait:               p.duration("ESIMFLOW_CONTACT_WAIT", get),
		ContactResolverURL:        get("ESIMFLOW_CONTACT_RESOLVER_URL"),
		ContactResolverToken:      get("ESIMFLOW_CONTACT_RESOLVER_TOKEN"),
		ContactResolverTTL:        p.duration("ESIMFLOW_CONTACT_RESOLVER_TTL", get),
		TemplateDir:               get("ESIMFLOW_TEMPLATE_DIR"),
	}
	if sync := get("ESIMFLOW_EMBEDDED_SYNC"); sync == "always" {
		c.EmbeddedSyncAlways = true
	} else {
		c.EmbeddedSyncEvery = p.duration("ESIMFLOW_EMBEDDED_SYNC", get)
	}
	if err := c.LogLevel.UnmarshalText([]byte(get("ESIMFLOW_LOG_LEVEL"))); err != nil {
		p.fail("ESIMFLOW_LOG_LEVEL", get("ESIMFLOW_LOG_LEVEL"), "want debug, info, warn or error")
	}
	switch f := get("ESIMFLOW_LOG_FORMAT"); f {
	case "json":
	case "text":
		c.LogText = true
	default:
		p.fail("ESIMFLOW_LOG_FORMAT", f, "want json or text")
	}
	if err := errors.Join(p.errs...); err != nil {
		return Config{}, err
	}
	return c, c.Validate()
}

var namespaceRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$`)

// LocaleRE is what a locale may look like: a BCP 47-ish tag such as en, de-AT
// or pt_BR.
var LocaleRE = regexp.MustCompile(`^[A-Za-z]{2,3}([-_][A-Za-z0-9]{2,8}){0,3}$`)

// Validate checks values that parse but make no sense.
func (c Config) Validate() error {
	var errs []error
	bad := func(env, why string) { errs = append(errs, fmt.Errorf("%s: %s", env, why)) }
	if c.Namespace != "" && !namespaceRE.MatchString(c.Namespace) {
		bad("ESIMFLOW_NAMESPACE", "want up to 32 letters, digits, '-' or '_', starting with a letter or digit")
	}
	if c.NATSURL != "" {
		for _, one := range list(c.NATSURL) {
			if _, err := url.Parse(one); err != nil {
				// The parse error quotes the URL, password and all.
				bad("ESIMFLOW_NATS_URL", "not a URL")
				break
			}
		}
	}
	n := c.NATS
	if c.NATSURL == "" && n != (NATSSecurity{}) {
		bad("ESIMFLOW_NATS_CREDS", "NATS credentials and TLS settings apply to an external NATS: set ESIMFLOW_NATS_URL")
	}
	if n.CredsFile != "" && n.NkeyFile != "" {
		bad("ESIMFLOW_NATS_CREDS", "set a credentials file or an nkey seed file, not both")
	}
	if (n.CertFile == "") != (n.KeyFile == "") {
		bad("ESIMFLOW_NATS_TLS_CERT", "a client certificate needs its key (ESIMFLOW_NATS_TLS_KEY) and the other way round")
	}
	var redisScheme string
	if c.RedisURL != "" {
		u, err := url.Parse(c.RedisURL)
		if err == nil {
			redisScheme = u.Scheme
		}
		if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss" && u.Scheme != "unix") {
			bad("ESIMFLOW_REDIS_URL", "want redis://, rediss:// or unix://")
		}
	}
	if u, err := url.Parse(c.APIURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad("ESIMFLOW_API_URL", "want http://host:port or https://host:port")
	}
	if c.Redis != (RedisTLS{}) && redisScheme != "rediss" {
		bad("ESIMFLOW_REDIS_TLS_CA", "Redis TLS settings need a rediss:// ESIMFLOW_REDIS_URL")
	}
	if (c.Redis.CertFile == "") != (c.Redis.KeyFile == "") {
		bad("ESIMFLOW_REDIS_TLS_CERT", "a client certificate needs its key (ESIMFLOW_REDIS_TLS_KEY) and the other way round")
	}
	if c.StreamReplicas < 1 || c.StreamReplicas > 5 {
		bad("ESIMFLOW_STREAM_REPLICAS", "want 1 to 5")
	}
	if c.EventsMaxAge < 0 {
		bad("ESIMFLOW_EVENTS_MAX_AGE", "must not be negative")
	}
	if c.EventsMaxBytes == 0 || c.EventsMaxBytes < -1 {
		bad("ESIMFLOW_EVENTS_MAX_BYTES", "want -1 (no limit) or a positive size")
	}
	if c.SeenTTL <= 0 {
		bad("ESIMFLOW_SEEN_TTL", "must be positive")
	}
	if c.MaxDeliver < 2 {
		bad("ESIMFLOW_MAX_DELIVER", "want 2 or more")
	}
	if c.ProcessorBatch < 1 || c.ProcessorBatch > 256 {
		bad("ESIMFLOW_PROCESSOR_BATCH", "want 1 to 256")
	}
	if c.IngestMaxBody < 1024 {
		bad("ESIMFLOW_INGEST_MAX_BODY", "want at least 1024 bytes")
	}
	for _, sec := range c.IngestHMACSecrets {
		if !strings.HasPrefix(sec, "whsec_") {
			bad("ESIMFLOW_INGEST_HMAC_SECRETS", "secrets start with whsec_ (Standard Webhooks)")
			break
		}
	}
	if c.IngestHMACTolerance <= 0 {
		bad("ESIMFLOW_INGEST_HMAC_TOLERANCE", "must be positive")
	}
	if (c.SignatureHeader == "") != (len(c.SignatureSecrets) == 0) {
		bad("ESIMFLOW_INGEST_SIGNATURE_HEADER", "the generic HMAC mode needs both a header and ESIMFLOW_INGEST_SIGNATURE_SECRETS")
	}
	if c.SignatureEncoding != "hex" && c.SignatureEncoding != "base64" {
		bad("ESIMFLOW_INGEST_SIGNATURE_ENCODING", "want hex or base64")
	}
	if c.RateLimit < 0 || c.RateBurst < 1 {
		bad("ESIMFLOW_INGEST_RATE_LIMIT", "want a rate of 0 or more and a burst of 1 or more")
	}
	if c.PublishTimeout <= 0 || c.PublishTimeout > 2500*time.Millisecond {
		bad("ESIMFLOW_INGEST_PUBLISH_TIMEOUT", "want more than 0 and at most 2.5s: with 2s to read the request, the answer must leave inside the provider's 5s")
	}
	if !c.EmbeddedSyncAlways && c.EmbeddedSyncEvery <= 0 {
		bad("ESIMFLOW_EMBEDDED_SYNC", "want always or a positive interval")
	}
	if len(c.LowDataThresholds) == 0 {
		bad("ESIMFLOW_LOW_DATA_THRESHOLDS", "want at least one percent")
	}
	for _, t := range c.LowDataThresholds {
		if t < 1 || t > 100 {
			bad("ESIMFLOW_LOW_DATA_THRESHOLDS", "percents must be 1 to 100")
			break
		}
	}
	errs = append(errs, c.validateNotifier()...)
	return errors.Join(errs...)
}

// validateNotifier checks the channel, contact and template settings.
func (c Config) validateNotifier() []error {
	var errs []error
	bad := func(env, why string) { errs = append(errs, fmt.Errorf("%s: %s", env, why)) }
	if c.SMTPURL != "" {
		if u, err := url.Parse(c.SMTPURL); err != nil || (u.Scheme != "smtp" && u.Scheme != "smtps") || u.Hostname() == "" {
			bad("ESIMFLOW_SMTP_URL", "want smtp://[user:pass@]host[:port] or smtps://…")
		}
		if a, err := mail.ParseAddress(c.EmailFrom); err != nil || a.Address == "" {
			bad("ESIMFLOW_EMAIL_FROM", "want an address such as care@shop.example or `Shop <care@shop.example>` (required with ESIMFLOW_SMTP_URL)")
		}
	}
	sms := []string{c.SMSAPIURL, c.SMSAccountSID, c.SMSAuthToken, c.SMSFrom}
	if slices.ContainsFunc(sms, func(v string) bool { return v != "" }) {
		if slices.Contains(sms, "") {
			bad("ESIMFLOW_SMS_API_URL", "the SMS channel needs ESIMFLOW_SMS_API_URL, _ACCOUNT_SID, _AUTH_TOKEN and _FROM together")
		} else if !httpURL(c.SMSAPIURL) {
			bad("ESIMFLOW_SMS_API_URL", "want an http:// or https:// URL")
		}
	}
	if c.NotifyWebhookURL != "" {
		if !httpURL(c.NotifyWebhookURL) {
			bad("ESIMFLOW_NOTIFY_WEBHOOK_URL", "want an http:// or https:// URL")
		}
		if !webhookSecret(c.NotifyWebhookSecret) {
			bad("ESIMFLOW_NOTIFY_WEBHOOK_SECRET", "want whsec_ followed by at least 16 base64-encoded bytes (required with the webhook URL)")
		}
	}
	for env, r := range map[string]float64{"ESIMFLOW_EMAIL_RATE": c.EmailRate, "ESIMFLOW_SMS_RATE": c.SMSRate, "ESIMFLOW_NOTIFY_WEBHOOK_RATE": c.NotifyWebhookRate} {
		if r < 0 {
			bad(env, "must not be negative (0 = unlimited)")
		}
	}
	if c.NotifyWorkers < 1 || c.NotifyWorkers > 1024 {
		bad("ESIMFLOW_NOTIFY_WORKERS", "want 1 to 1024")
	}
	if !LocaleRE.MatchString(c.NotifyLocale) {
		bad("ESIMFLOW_NOTIFY_LOCALE", "want a locale such as en, de or pt-BR")
	}
	if c.ContactWait < 0 {
		bad("ESIMFLOW_CONTACT_WAIT", "must not be negative")
	}
	if c.ContactResolverURL != "" && !httpURL(strings.NewReplacer("{", "", "}", "").Replace(c.ContactResolverURL)) {
		bad("ESIMFLOW_CONTACT_RESOLVER_URL", "want an http:// or https:// URL")
	}
	if c.ContactResolverTTL <= 0 {
		bad("ESIMFLOW_CONTACT_RESOLVER_TTL", "must be positive")
	}
	return errs
}

func httpURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// webhookSecret reports whether s is a Standard Webhooks secret.
func webhookSecret(s string) bool {
	b64, ok := strings.CutPrefix(s, "whsec_")
	key, err := base64.StdEncoding.DecodeString(b64)
	return ok && err == nil && len(key) >= 16
}

// LogValue lists the effective settings with secrets redacted.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("nats", orDefault(RedactURLs(c.NATSURL), "embedded")),
		slog.String("nats_creds", c.NATS.CredsFile),
		slog.String("nats_nkey", c.NATS.NkeyFile),
		slog.Bool("nats_tls_ca", c.NATS.CAFile != ""),
		slog.Bool("nats_tls_client_cert", c.NATS.CertFile != ""),
		slog.String("redis", orDefault(RedactURLs(c.RedisURL), "none (NATS KV store)")),
		slog.Bool("redis_tls_ca", c.Redis.CAFile != ""),
		slog.Bool("redis_tls_client_cert", c.Redis.CertFile != ""),
		slog.String("http", c.HTTPAddr),
		slog.String("admin", c.AdminAddr),
		slog.String("namespace", c.Namespace),
		slog.Bool("admin_token", c.AdminToken != ""),
		slog.Bool("pprof", c.Pprof),
		slog.Int("ingest_tokens", len(c.IngestTokens)),
		slog.Int("ingest_hmac_secrets", len(c.IngestHMACSecrets)),
		slog.Int("ingest_signature_secrets", len(c.SignatureSecrets)),
		slog.Any("ingest_allow_cidrs", c.AllowCIDRs),
		slog.Any("low_data_thresholds", c.LowDataThresholds),
		slog.Any("channels", c.Channels()),
		slog.Bool("contact_resolver", c.ContactResolverURL != ""),
		slog.String("template_dir", orDefault(c.TemplateDir, "built-in")),
	)
}

// Channels names the notifier channels the settings configure, in routing
// order; console alone when none is.
func (c Config) Channels() []string {
	var out []string
	if c.SMTPURL != "" {
		out = append(out, "email")
	}
	if c.SMSAPIURL != "" {
		out = append(out, "sms")
	}
	if c.NotifyWebhookURL != "" {
		out = append(out, "webhook")
	}
	if len(out) == 0 {
		out = append(out, "console")
	}
	return out
}

// RedactURLs hides the password, or the token, of each URL in a
// comma-separated list; what is not a URL is hidden whole.
func RedactURLs(v string) string {
	var out []string
	for _, one := range list(v) {
		u, err := url.Parse(one)
		switch {
		case err != nil:
			out = append(out, "(unparsable URL)")
		case u.User == nil:
			out = append(out, one)
		default:
			if _, hasPassword := u.User.Password(); !hasPassword {
				// nats://TOKEN@host: the user name is the secret.
				u.User = url.User("xxxxx")
			}
			out = append(out, u.Redacted())
		}
	}
	return strings.Join(out, ",")
}

func orDefault(v, d string) string {
	if v == "" {
		return d
	}
	return v
}

type parser struct{ errs []error }

func (p *parser) fail(env, value, why string) {
	p.errs = append(p.errs, fmt.Errorf("%s=%q: %s", env, value, why))
}

func (p *parser) int(env string, get func(string) string) int {
	v := get(env)
	n, err := strconv.Atoi(v)
	if err != nil {
		p.fail(env, v, "want an integer")
	}
	return n
}

func (p *parser) bool(env string, get func(string) string) bool {
	v := get(env)
	b, err := strconv.ParseBool(v)
	if err != nil {
		p.fail(env, v, "want true or false")
	}
	return b
}

func (p *parser) duration(env string, get func(string) string) time.Duration {
	v := get(env)
	if v == "0" {
		return 0
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		p.fail(env, v, "want a duration such as 30s, 5m or 720h")
	}
	return d
}

func (p *parser) float(env string, get func(string) string) float64 {
	v := get(env)
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f != f {
		p.fail(env, v, "want a number")
	}
	return f
}

// prefixes reads CIDRs; a bare address is its own /32 or /128.
func (p *parser) prefixes(env string, get func(string) string) []netip.Prefix {
	var out []netip.Prefix
	for _, f := range list(get(env)) {
		if pre, err := netip.ParsePrefix(f); err == nil {
			out = append(out, pre.Masked())
		} else if addr, err := netip.ParseAddr(f); err == nil {
			out = append(out, netip.PrefixFrom(addr.Unmap(), addr.Unmap().BitLen()))
		} else {
			p.fail(env, f, "want a CIDR such as 203.0.113.0/24 or an address")
		}
	}
	return out
}

// list splits a comma-separated value, dropping empty items.
func list(v string) []string {
	var out []string
	for _, f := range strings.Split(v, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

func (p *parser) ints(env string, get func(string) string) []int {
	v := get(env)
	var out []int
	for _, f := range strings.Split(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil {
			p.fail(env, v, "want comma-separated integers")
			return nil
		}
		out = append(out, n)
	}
	slices.Sort(out)
	return slices.Compact(out)
}
