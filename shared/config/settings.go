package config

import (
	"regexp"
	"slices"
	"strings"
	"time"
)

// Setting is one environment variable: declared once, in sections below.
type Setting struct {
	Env     string
	Default string // "" = empty
	Meaning string
	Secret  bool // redacted in the log

	field field // the Config field it fills; nil in Settings()
}

// Section is a group of settings: one part of the system, a heading in
// docs/configuration.md and a group in the log.
type Section struct {
	Key      string // the log group
	Title    string
	Intro    string
	Settings []Setting
}

// Sections lists every setting, by section, without binding them to a
// Config: what the reference documents.
func Sections() []Section {
	var c Config
	out := c.sections()
	for i := range out {
		for j := range out[i].Settings {
			out[i].Settings[j].field = nil
		}
	}
	return out
}

// Settings lists every setting, in the order of Sections.
func Settings() []Setting {
	var out []Setting
	for _, sec := range Sections() {
		out = append(out, sec.Settings...)
	}
	return out
}

// settings is every setting bound to c's fields.
func (c *Config) settings() []Setting {
	var out []Setting
	for _, sec := range c.sections() {
		out = append(out, sec.Settings...)
	}
	return out
}

// sections is the table: every setting, bound to c's fields, one method per
// section below.
func (c *Config) sections() []Section {
	return []Section{
		c.commonSection(), c.logSection(), c.adminSection(), c.natsSection(), c.storeSection(),
		c.ingestSection(), c.processorSection(), c.notifierSection(), c.cliSection(),
	}
}

func (c *Config) commonSection() Section {
	return Section{
		Key: "common", Title: "Common",
		Intro: "Read by every process: the names and shape of the JetStream layout and of the store's keys.",
		Settings: []Setting{
			{Env: "ESIMFLOW_NAMESPACE", Meaning: "prefix for stream, consumer, subject, KV and Redis key names",
				field: text(&c.Namespace, matches(namespaceRE, "want up to 32 letters, digits, '-' or '_', starting with a letter or digit"))},
			{Env: "ESIMFLOW_STREAM_REPLICAS", Default: "1", Meaning: "replicas of every stream and KV bucket (3 on a cluster)",
				field: integer(&c.Replicas, between(1, 5))},
			{Env: "ESIMFLOW_MAX_DELIVER", Default: "10", Meaning: "deliveries of an event before it goes to `ESIM_DLQ`",
				field: integer(&c.MaxDeliver, func(n int) string { return whenf(n < 2, "want 2 or more") })},
			{Env: "ESIMFLOW_PROVIDERS_DIR", Meaning: "directory of provider mapping files (`*.yaml`, docs/providers.md), read by ingest and the processor at start; a file may replace a built-in provider",
				field: text(&c.ProvidersDir)},
		},
	}
}

func (c *Config) logSection() Section {
	return Section{
		Key: "log", Title: "Logging",
		Settings: []Setting{
			{Env: "ESIMFLOW_LOG_LEVEL", Default: "info", Meaning: "`debug`, `info`, `warn` or `error`", field: level(&c.Log.Level)},
			{Env: "ESIMFLOW_LOG_FORMAT", Default: "json", Meaning: "`json` (for log collectors) or `text` (for people; `make run` uses it)",
				field: choice(&c.Log.Text, map[string]bool{"json": false, "text": true}, "want json or text")},
		},
	}
}

func (c *Config) adminSection() Section {
	return Section{
		Key: "admin", Title: "Internal API",
		Intro: "Every process serves it: health, readiness, metrics, and the routes of what it owns.",
		Settings: []Setting{
			{Env: "ESIMFLOW_ADMIN_ADDR", Default: "127.0.0.1:8081", Meaning: "internal API, `/healthz`, `/readyz`, `/metrics`; beyond loopback (`:8081`) only with `ESIMFLOW_ADMIN_TOKEN`", field: text(&c.Admin.Addr)},
			{Env: "ESIMFLOW_ADMIN_TOKEN", Meaning: "when set, the internal API needs `Authorization: Bearer <token>` (`/healthz`, `/metrics` and a bare `/readyz` stay open)", Secret: true, field: text(&c.Admin.Token)},
			{Env: "ESIMFLOW_ADMIN_INSECURE", Default: "false", Meaning: "`true` lets the internal API listen beyond loopback without a token (customer contacts and dead letters open to the network): only behind a network you protect otherwise",
				field: boolean(&c.Admin.Insecure)},
			{Env: "ESIMFLOW_ADMIN_ALLOWED_HOSTS", Meaning: "comma-separated `Host` names the internal API answers besides loopback names, IP addresses and its listen host (against DNS rebinding); `*` = any",
				field: list(&c.Admin.AllowedHosts)},
			{Env: "ESIMFLOW_PPROF", Default: "false", Meaning: "`true` serves Go profiles (`/debug/pprof/`) on the admin port, behind the admin token when one is set",
				field: boolean(&c.Admin.Pprof)},
		},
	}
}

func (c *Config) natsSection() Section {
	return Section{
		Key: "nats", Title: "NATS and JetStream",
		Intro: "Every process connects to NATS; with no `ESIMFLOW_NATS_URL` the all-in-one and the CLI start the embedded server.",
		Settings: []Setting{
			{Env: "ESIMFLOW_NATS_URL", Meaning: "NATS to use, comma-separated for a cluster (`nats://user:pass@host:4222`, `tls://…`); empty = embedded server",
				Secret: true, field: text(&c.NATS.URL, urls)},
			{Env: "ESIMFLOW_NATS_CREDS", Meaning: "NATS credentials file (user JWT and nkey seed, as `nsc` writes it)", field: text(&c.NATS.CredsFile)},
			{Env: "ESIMFLOW_NATS_NKEY", Meaning: "NATS nkey seed file (a user the server lists by public nkey)", field: text(&c.NATS.NkeyFile)},
			{Env: "ESIMFLOW_NATS_TLS_CA", Meaning: "PEM file of the CA that signed the NATS servers' certificates (implies TLS)", field: text(&c.NATS.CAFile)},
			{Env: "ESIMFLOW_NATS_TLS_CERT", Meaning: "PEM client certificate for NATS mutual TLS (with `ESIMFLOW_NATS_TLS_KEY`)", field: text(&c.NATS.CertFile)},
			{Env: "ESIMFLOW_NATS_TLS_KEY", Meaning: "PEM private key of `ESIMFLOW_NATS_TLS_CERT`", field: text(&c.NATS.KeyFile)},
			{Env: "ESIMFLOW_DATA_DIR", Default: "./data", Meaning: "embedded JetStream storage", field: text(&c.NATS.DataDir)},
			{Env: "ESIMFLOW_EMBEDDED_NATS_ADDR", Meaning: "`host:port` the embedded NATS listens on, for clients that authenticate with its nkey; beyond loopback only with TLS; empty = in-process connections only", field: text(&c.NATS.EmbeddedAddr)},
			{Env: "ESIMFLOW_EMBEDDED_NATS_NKEY", Meaning: "nkey seed file of the user the embedded listener admits; empty = `embedded-nats.nk` in the data dir, generated (0600) on first start", field: text(&c.NATS.EmbeddedNkeyFile)},
			{Env: "ESIMFLOW_EMBEDDED_NATS_TLS_CERT", Meaning: "PEM certificate of the embedded listener (with `ESIMFLOW_EMBEDDED_NATS_TLS_KEY`); required beyond loopback", field: text(&c.NATS.EmbeddedTLSCert)},
			{Env: "ESIMFLOW_EMBEDDED_NATS_TLS_KEY", Meaning: "PEM private key of `ESIMFLOW_EMBEDDED_NATS_TLS_CERT`", field: text(&c.NATS.EmbeddedTLSKey)},
			{Env: "ESIMFLOW_EMBEDDED_SYNC", Default: "always", Meaning: "embedded JetStream fsync: `always` (fsync before every ack) or an interval such as `2m` (faster; a power loss can lose the last interval's acked events)",
				field: syncInterval(&c.NATS.SyncEvery)},
			{Env: "ESIMFLOW_EVENTS_MAX_AGE", Default: "720h", Meaning: "how long `ESIM_EVENTS` keeps events (the replay horizon); 0 = forever",
				field: duration(&c.NATS.EventsMaxAge, nonNegative)},
			{Env: "ESIMFLOW_EVENTS_MAX_BYTES", Default: "-1", Meaning: "size limit of `ESIM_EVENTS`; when full, ingest answers 503; -1 = none",
				field: integer(&c.NATS.EventsMaxBytes, func(n int64) string {
					return whenf(n == 0 || n < -1, "want -1 (no limit) or a positive size")
				})},
		},
	}
}

func (c *Config) storeSection() Section {
	return Section{
		Key: "store", Title: "Store",
		Intro: "Read by the processor, the notifier, the all-in-one and `esimflow replay`; never by ingest.",
		Settings: []Setting{
			{Env: "ESIMFLOW_REDIS_URL", Meaning: "Redis to use (`redis://user:pass@host:6379/0`, or `rediss://` for TLS; a Redis Cluster as `redis+cluster://user:pass@host1:6379,host2:6379,host3:6379` or `rediss+cluster://`); empty = NATS KV store",
				Secret: true, field: text(&c.Store.URL, redisURL)},
			{Env: "ESIMFLOW_REDIS_TLS_CA", Meaning: "PEM file of the CA that signed Redis's certificate (`rediss://` only; default: the system's roots)", field: text(&c.Store.CAFile)},
			{Env: "ESIMFLOW_REDIS_TLS_CERT", Meaning: "PEM client certificate for Redis (`tls-auth-clients yes`), with `ESIMFLOW_REDIS_TLS_KEY`", field: text(&c.Store.CertFile)},
			{Env: "ESIMFLOW_REDIS_TLS_KEY", Meaning: "PEM private key of `ESIMFLOW_REDIS_TLS_CERT`", field: text(&c.Store.KeyFile)},
			{Env: "ESIMFLOW_SEEN_TTL", Default: "168h", Meaning: "how long the processor remembers a processed event's dedupe key",
				field: duration(&c.Store.SeenTTL, positive)},
		},
	}
}

func (c *Config) ingestSection() Section {
	return Section{
		Key: "ingest", Title: "Ingest",
		Intro: "The webhook receiver. With no sender verification (path tokens, a signature scheme or an allowlist) it listens on loopback only, unless `ESIMFLOW_INGEST_INSECURE` says otherwise.",
		Settings: []Setting{
			{Env: "ESIMFLOW_HTTP_ADDR", Default: "127.0.0.1:8080", Meaning: "webhook receiver: `POST /webhooks/esim` (also `/api/webhooks/esim`); beyond loopback (`:8080`) only with sender verification", field: text(&c.Ingest.HTTPAddr)},
			{Env: "ESIMFLOW_INGEST_INSECURE", Default: "false", Meaning: "`true` lets ingest listen beyond loopback with no sender verification (anyone who reaches it can post events)",
				field: boolean(&c.Ingest.Insecure)},
			{Env: "ESIMFLOW_INGEST_TOKENS", Meaning: "comma-separated path tokens: `POST /webhooks/esim/{token}` (several, for rotation)",
				Secret: true, field: list(&c.Ingest.Tokens)},
			{Env: "ESIMFLOW_INGEST_HMAC_SECRETS", Meaning: "comma-separated Standard Webhooks secrets (`whsec_…`): `webhook-id`, `webhook-timestamp`, `webhook-signature` required",
				Secret: true, field: list(&c.Ingest.HMACSecrets, each(func(s string) string {
					return whenf(!hasPrefix(s, "whsec_"), "secrets start with whsec_ (Standard Webhooks)")
				}))},
			{Env: "ESIMFLOW_INGEST_HMAC_TOLERANCE", Default: "5m", Meaning: "how far a Standard Webhooks timestamp may be from now (replay window)",
				field: duration(&c.Ingest.HMACTolerance, positive)},
			{Env: "ESIMFLOW_INGEST_SIGNATURE_HEADER", Meaning: "generic HMAC-SHA256 mode: the header carrying the body's signature (e.g. `X-Signature`)", field: text(&c.Ingest.SignatureHeader)},
			{Env: "ESIMFLOW_INGEST_SIGNATURE_SECRETS", Meaning: "comma-separated secrets for the generic HMAC mode", Secret: true, field: list(&c.Ingest.SignatureSecrets)},
			{Env: "ESIMFLOW_INGEST_SIGNATURE_ENCODING", Default: "hex", Meaning: "generic HMAC mode: `hex` or `base64` (an optional `sha256=` prefix is accepted)",
				field: text(&c.Ingest.SignatureEncoding, oneOf("want hex or base64", "hex", "base64"))},
			{Env: "ESIMFLOW_PROVIDER_SECRETS", Meaning: "comma-separated `provider=secret` pairs: each provider's signing key (Airalo's client secret, eSIM Go's API key, Roamify's secret, 1GLOBAL's `user:password`, Telna's accepted SNS topic ARNs); a provider without one is not verified beyond tokens and the allowlist",
				Secret: true, field: list(&c.Ingest.ProviderSecrets, each(func(s string) string {
					name, secret, ok := strings.Cut(s, "=")
					return whenf(!ok || strings.TrimSpace(name) == "" || secret == "", "want provider=secret pairs")
				}))},
			{Env: "ESIMFLOW_PROVIDERS_SNS_HOSTS", Default: "sns.*.amazonaws.com", Meaning: "comma-separated host patterns an SNS signing certificate is fetched from and a `SubscribeURL` visited on (https only)",
				field: list(&c.Ingest.SNSHosts)},
			{Env: "ESIMFLOW_INGEST_ALLOW_CIDRS", Meaning: "comma-separated sender allowlist (CIDRs or addresses)", field: prefixes(&c.Ingest.AllowCIDRs)},
			{Env: "ESIMFLOW_INGEST_TRUSTED_PROXIES", Meaning: "comma-separated CIDRs of proxies whose `X-Forwarded-For` is believed", field: prefixes(&c.Ingest.TrustedProxies)},
			{Env: "ESIMFLOW_INGEST_RATE_LIMIT", Default: "0", Meaning: "requests per second allowed per sender IP (429 beyond); 0 = no limit",
				field: number(&c.Ingest.RateLimit, func(r float64) string { return whenf(r < 0, "want a rate of 0 or more") })},
			{Env: "ESIMFLOW_INGEST_RATE_BURST", Default: "50", Meaning: "burst allowed per sender IP above the rate",
				field: integer(&c.Ingest.RateBurst, func(n int) string { return whenf(n < 1, "want a burst of 1 or more") })},
			{Env: "ESIMFLOW_INGEST_MAX_BODY", Default: "262144", Meaning: "bytes; larger bodies get 413",
				field: integer(&c.Ingest.MaxBody, func(n int64) string { return whenf(n < 1024, "want at least 1024 bytes") })},
			{Env: "ESIMFLOW_INGEST_PUBLISH_TIMEOUT", Default: "2s", Meaning: "how long ingest waits for the JetStream ack before answering 503",
				field: duration(&c.Ingest.PublishTimeout, func(d time.Duration) string {
					return whenf(d <= 0 || d > 2500*time.Millisecond,
						"want more than 0 and at most 2.5s: with 2s to read the request, the answer must leave inside the provider's 5s")
				})},
		},
	}
}

func (c *Config) processorSection() Section {
	return Section{
		Key: "processor", Title: "Processor",
		Settings: []Setting{
			{Env: "ESIMFLOW_PROCESSOR_BATCH", Default: "32", Meaning: "events a processor worker takes from its pull at once, merged with one read and one write of the state it touches; 1 = one at a time (docs/adr/0004, 0005)",
				field: integer(&c.Processor.Batch, between(1, 256))},
			{Env: "ESIMFLOW_LOW_DATA_THRESHOLDS", Default: "80,100", Meaning: "usage percents that notify",
				field: percents(&c.Processor.LowDataThresholds)},
			{Env: "ESIMFLOW_NOTIFY_TOP_UPS", Default: "false", Meaning: "`true` tells the customer when a bundle is topped up (`topped_up`: a new data bundle on a subscription that had one)",
				field: boolean(&c.Processor.TopUps)},
			{Env: "ESIMFLOW_NOTIFY_RENEWALS", Default: "false", Meaning: "`true` tells the customer when a subscription is renewed (`renewed`: a validity period that follows another)",
				field: boolean(&c.Processor.Renewals)},
			{Env: "ESIMFLOW_EVENT_MAX_SKEW", Default: "10m", Meaning: "how far past now an event's own time may be; a later one goes to `ESIM_DLQ` with the reason instead of pinning the state",
				field: duration(&c.Processor.MaxEventSkew, positive)},
			{Env: "ESIMFLOW_RECONCILE_URL", Meaning: "base URL of the provider's eSIM Access–compatible query API (`/api/v1/open/esim/query`); set, every processor polls it for what webhooks missed (docs/adr/0010); empty = off",
				field: text(&c.Processor.Reconcile.URL)},
			{Env: "ESIMFLOW_RECONCILE_ACCESS_CODE", Meaning: "the provider account's `RT-AccessCode`", field: text(&c.Processor.Reconcile.AccessCode)},
			{Env: "ESIMFLOW_RECONCILE_SECRET", Meaning: "the provider account's secret key: signs each query (`RT-Signature`), never sent", Secret: true, field: text(&c.Processor.Reconcile.Secret)},
			{Env: "ESIMFLOW_RECONCILE_STALE", Default: "3m", Meaning: "how long an order or eSIM whose state differs from the provider's may stay silent before the poll's events are published (a webhook may still be on its way); install data is fetched at once",
				field: duration(&c.Processor.Reconcile.Stale, positive)},
			{Env: "ESIMFLOW_RECONCILE_INTERVAL", Default: "30s", Meaning: "how often the provider's orders, with their status and usage, are swept (by one processor instance at a time)",
				field: duration(&c.Processor.Reconcile.Interval, positive)},
			{Env: "ESIMFLOW_RECONCILE_LOOKBACK", Default: "720h", Meaning: "how far back, by order time, a sweep asks the provider for orders",
				field: duration(&c.Processor.Reconcile.Lookback, positive)},
			{Env: "ESIMFLOW_RECONCILE_RATE", Default: "4", Meaning: "query calls per second all processor instances together may make, per provider account (eSIM Access allows 8; each second's budget at most half of it keeps every 1 s span within it)",
				field: integer(&c.Processor.Reconcile.Rate, between(1, 1000))},
		},
	}
}

func (c *Config) notifierSection() Section {
	return Section{
		Key: "notifier", Title: "Notifier",
		Intro: "Channels, contacts and templates. With no channel configured, messages are printed (the console channel).",
		Settings: []Setting{
			{Env: "ESIMFLOW_SMTP_URL", Meaning: "email channel: `smtp://user:pass@host:587` (STARTTLS required beyond loopback), `smtps://user:pass@host:465` (implicit TLS) or `smtp+insecure://host:1025` (STARTTLS only if offered: a development catcher); empty = no email",
				Secret: true, field: text(&c.Notifier.Email.URL, smtpURL)},
			{Env: "ESIMFLOW_EMAIL_FROM", Meaning: "sender of customer emails (`Shop <care@shop.example>`); required with `ESIMFLOW_SMTP_URL`", field: text(&c.Notifier.Email.From)},
			{Env: "ESIMFLOW_EMAIL_RATE", Default: "10", Meaning: "emails per second, per notifier instance; 0 = unlimited", field: number(&c.Notifier.Email.Rate, rate)},
			{Env: "ESIMFLOW_SMS_API_URL", Meaning: "SMS channel: base URL of a Twilio-compatible REST API (the part before `/2010-04-01/Accounts/…`); empty = no SMS", field: text(&c.Notifier.SMS.APIURL)},
			{Env: "ESIMFLOW_SMS_ACCOUNT_SID", Meaning: "SMS account SID (basic-auth user and part of the API path)", field: text(&c.Notifier.SMS.AccountSID)},
			{Env: "ESIMFLOW_SMS_AUTH_TOKEN", Meaning: "SMS auth token (basic-auth password)", Secret: true, field: text(&c.Notifier.SMS.AuthToken)},
			{Env: "ESIMFLOW_SMS_FROM", Meaning: "SMS sender: an E.164 number, or a messaging service SID (`MG…`)", field: text(&c.Notifier.SMS.From)},
			{Env: "ESIMFLOW_SMS_RATE", Default: "1", Meaning: "SMS per second, per notifier instance; 0 = unlimited", field: number(&c.Notifier.SMS.Rate, rate)},
			{Env: "ESIMFLOW_WHATSAPP_API_URL", Meaning: "WhatsApp channel: base URL of a WhatsApp Business Cloud API–compatible endpoint, with its version (the part before `/{phone-number-id}/messages`); empty = no WhatsApp",
				field: text(&c.Notifier.WhatsApp.APIURL, optional(httpURL, "want an http:// or https:// URL"))},
			{Env: "ESIMFLOW_WHATSAPP_PHONE_NUMBER_ID", Meaning: "WhatsApp sender: the business phone number id", field: text(&c.Notifier.WhatsApp.PhoneNumberID)},
			{Env: "ESIMFLOW_WHATSAPP_TOKEN", Meaning: "WhatsApp access token (sent as a bearer token)", Secret: true, field: text(&c.Notifier.WhatsApp.Token)},
			{Env: "ESIMFLOW_WHATSAPP_TEMPLATE_PREFIX", Default: "esimflow_", Meaning: "prefix of the approved WhatsApp template names, one per kind and language (`esimflow_low_data` in `de`, `pt_BR`, …; parameters in docs/design.md)",
				field: text(&c.Notifier.WhatsApp.TemplatePrefix, matches(regexp.MustCompile(`^[a-z0-9_]{0,64}$`), "want lower-case letters, digits and _"))},
			{Env: "ESIMFLOW_WHATSAPP_RATE", Default: "20", Meaning: "WhatsApp messages per second, per notifier instance; 0 = unlimited", field: number(&c.Notifier.WhatsApp.Rate, rate)},
			{Env: "ESIMFLOW_NOTIFY_CHANNELS", Default: "email,sms,whatsapp,webhook,console", Meaning: "the order channels are tried in for a contact that names none: a message goes out on the first configured channel the contact has an address for that takes it, moving on after a permanent failure or a timeout (a contact's own `channels` override it)",
				field: list(&c.Notifier.ChannelOrder, each(func(s string) string {
					return whenf(!slices.Contains([]string{"email", "sms", "whatsapp", "webhook", "console"}, s), "want channels among email, sms, whatsapp, webhook, console")
				}))},
			{Env: "ESIMFLOW_NOTIFY_SEND_TIMEOUT", Default: "10s", Meaning: "how long one channel may take to accept a message; past it the message moves on to the next channel (the try's outcome is unknown, and logged so)",
				field: duration(&c.Notifier.SendTimeout, positive)},
			{Env: "ESIMFLOW_QUIET_HOURS", Meaning: "quiet hours on the customer's clock, e.g. `22:00-08:00`: non-critical messages that come in them are held until they end; empty = none",
				field: clockRange(&c.Notifier.Quiet.Window)},
			{Env: "ESIMFLOW_QUIET_HOURS_TIME_ZONE", Default: "UTC", Meaning: "IANA time zone of the quiet hours for customers whose contact has no `timeZone`",
				field: text(&c.Notifier.Quiet.TimeZone, timeZone)},
			{Env: "ESIMFLOW_QUIET_HOURS_CRITICAL", Default: "activation,data_exhausted", Meaning: "message kinds sent at once even in quiet hours, and whatever the customer opted out of (of activation, low_data, data_exhausted, validity_low, topped_up, renewed)",
				field: list(&c.Notifier.Quiet.Critical, each(func(s string) string {
					return whenf(!slices.Contains(templateKinds, s), "want kinds among activation, low_data, data_exhausted, validity_low, topped_up, renewed")
				}))},
			{Env: "ESIMFLOW_TOPUP_URL", Meaning: "the reseller's top-up link for low-data and validity messages (`{{.TopUpURL}}` in templates), e.g. `https://shop.example/topup?iccid={iccid}` (also `{orderNo}`, `{transactionId}`); empty = none",
				field: text(&c.Notifier.TopUpURL, optional(resolverURL, "want an http:// or https:// URL"))},
			{Env: "ESIMFLOW_NOTIFY_WEBHOOK_URL", Meaning: "signed outbound webhook channel: the reseller's endpoint (`https://…`); empty = none",
				field: text(&c.Notifier.Webhook.URL, optional(httpURL, "want an http:// or https:// URL"))},
			{Env: "ESIMFLOW_NOTIFY_WEBHOOK_SECRET", Meaning: "Standard Webhooks signing secret (`whsec_` + base64); required with the webhook URL", Secret: true, field: text(&c.Notifier.Webhook.Secret)},
			{Env: "ESIMFLOW_NOTIFY_WEBHOOK_ALLOW_PRIVATE", Default: "false", Meaning: "`true` lets the webhook reach loopback, private and link-local addresses (refused by default, against SSRF)",
				field: boolean(&c.Notifier.Webhook.AllowPrivate)},
			{Env: "ESIMFLOW_NOTIFY_WEBHOOK_RATE", Default: "20", Meaning: "webhook calls per second, per notifier instance; 0 = unlimited", field: number(&c.Notifier.Webhook.Rate, rate)},
			{Env: "ESIMFLOW_NOTIFY_WORKERS", Default: "32", Meaning: "intents a notifier handles at once: each waits on store round trips and its channel, so more than the cores; channel rate limits still apply; 1 = one at a time",
				field: integer(&c.Notifier.Workers, between(1, 1024))},
			{Env: "ESIMFLOW_NOTIFY_BATCH", Default: "16", Meaning: "intents a notifier worker takes from its pull at once, claimed, checked, marked and logged with a few store round trips for the whole batch, sent concurrently; the workers are split into batches of this size, so as many intents as workers are in flight; 1 = one at a time (docs/adr/0015)",
				field: integer(&c.Notifier.Batch, between(1, 256))},
			{Env: "ESIMFLOW_NOTIFY_LOCALE", Default: "en", Meaning: "locale of messages to customers whose contact has none (templates fall back to English)",
				field: text(&c.Notifier.Locale, localeTag)},
			{Env: "ESIMFLOW_CONTACT_WAIT", Default: "15m", Meaning: "how long a message waits for its customer's contact (the checkout may register it late) before it goes to `ESIM_DLQ`",
				field: duration(&c.Notifier.ContactWait, nonNegative)},
			{Env: "ESIMFLOW_CONTACT_RESOLVER_URL", Meaning: "optional `GET` for contacts not registered through the API, e.g. `https://shop.example/esim-contacts/{transactionId}` (also `{orderNo}`, `{iccid}`); 404 = no contact",
				field: text(&c.Notifier.Resolver.URL, optional(resolverURL, "want an http:// or https:// URL"))},
			{Env: "ESIMFLOW_CONTACT_RESOLVER_TOKEN", Meaning: "sent to the resolver as `Authorization: Bearer <token>`", Secret: true, field: text(&c.Notifier.Resolver.Token)},
			{Env: "ESIMFLOW_CONTACT_RESOLVER_TTL", Default: "10m", Meaning: "how long a contact the resolver returned is cached", field: duration(&c.Notifier.Resolver.TTL, positive)},
			{Env: "ESIMFLOW_CONTACT_RESOLVER_ALLOW_PRIVATE", Default: "false", Meaning: "`true` lets the resolver reach loopback and private addresses (refused by default, against SSRF)",
				field: boolean(&c.Notifier.Resolver.AllowPrivate)},
			{Env: "ESIMFLOW_TEMPLATE_DIR", Meaning: "directory of message templates (`<locale>/<kind>.tmpl`) that override the built-in ones", field: text(&c.Notifier.TemplateDir)},
		},
	}
}

func (c *Config) cliSection() Section {
	return Section{
		Key: "cli", Title: "Operator commands",
		Intro: "Read by `esimflow status`, `order`, `profile` and `dlq`; their `--api` and `--token` flags override these.",
		Settings: []Setting{
			{Env: "ESIMFLOW_API_URL", Default: "http://127.0.0.1:8081", Meaning: "internal API the operator commands (`esimflow dlq`) talk to, comma-separated for several services; `--api` overrides it",
				field: list(&c.CLI.APIURLs, each(func(s string) string { return whenf(!httpURL(s), "want http://host:port or https://host:port") }))},
		},
	}
}

func nonNegative(d time.Duration) string { return whenf(d < 0, "must not be negative") }

func positive(d time.Duration) string { return whenf(d <= 0, "must be positive") }

func rate(r float64) string { return whenf(r < 0, "must not be negative (0 = unlimited)") }
