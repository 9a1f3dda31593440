// Package config reads esimflow's settings from ESIMFLOW_* variables, through an
// injected getenv so tests and the CLI never touch the process environment.
//
// Settings lists every variable with its default and meaning; the README's
// configuration table is checked against it, so the two cannot drift.
package config

import (
	"errors"
	"fmt"
	"log/slog"
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
	{Env: "ESIMFLOW_NATS_URL", Meaning: "NATS to use; empty = embedded server"},
	{Env: "ESIMFLOW_REDIS_URL", Meaning: "Redis to use (`redis://` or `rediss://`); empty = NATS KV store", Secret: true},
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
	{Env: "ESIMFLOW_PROCESSOR_BATCH", Default: "32", Meaning: "events a processor worker takes from its pull at once, with one seen check and mark per batch; 1 = one at a time (docs/adr/0003)"},
	{Env: "ESIMFLOW_ADMIN_TOKEN", Meaning: "when set, the internal API needs `Authorization: Bearer <token>`", Secret: true},
	{Env: "ESIMFLOW_INGEST_MAX_BODY", Default: "262144", Meaning: "bytes; larger bodies get 413"},
	{Env: "ESIMFLOW_INGEST_PUBLISH_TIMEOUT", Default: "2s", Meaning: "how long ingest waits for the JetStream ack before answering 503"},
	{Env: "ESIMFLOW_LOW_DATA_THRESHOLDS", Default: "80,100", Meaning: "usage percents that notify"},
	{Env: "ESIMFLOW_LOG_LEVEL", Default: "info", Meaning: "`debug`, `info`, `warn` or `error`"},
	{Env: "ESIMFLOW_LOG_FORMAT", Default: "json", Meaning: "`json` (for log collectors) or `text` (for people; `make run` uses it)"},
	{Env: "ESIMFLOW_API_URL", Default: "http://127.0.0.1:8081", Meaning: "internal API the operator commands (`esimflow dlq`) talk to; `--api` overrides it"},
}

// Config is the validated configuration of every service.
type Config struct {
	NATSURL            string
	RedisURL           string
	HTTPAddr           string
	AdminAddr          string
	DataDir            string
	EmbeddedNATSAddr   string
	EmbeddedSyncAlways bool
	EmbeddedSyncEvery  time.Duration
	Namespace          string
	StreamReplicas     int
	EventsMaxAge       time.Duration
	EventsMaxBytes     int64
	SeenTTL            time.Duration
	MaxDeliver         int
	ProcessorBatch     int
	AdminToken         string
	IngestMaxBody      int64
	PublishTimeout     time.Duration
	LowDataThresholds  []int
	LogLevel           slog.Level
	LogText            bool
	APIURL             string
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
		NATSURL:           get("ESIMFLOW_NATS_URL"),
		RedisURL:          get("ESIMFLOW_REDIS_URL"),
		HTTPAddr:          get("ESIMFLOW_HTTP_ADDR"),
		AdminAddr:         get("ESIMFLOW_ADMIN_ADDR"),
		DataDir:           get("ESIMFLOW_DATA_DIR"),
		EmbeddedNATSAddr:  get("ESIMFLOW_EMBEDDED_NATS_ADDR"),
		Namespace:         get("ESIMFLOW_NAMESPACE"),
		StreamReplicas:    p.int("ESIMFLOW_STREAM_REPLICAS", get),
		EventsMaxAge:      p.duration("ESIMFLOW_EVENTS_MAX_AGE", get),
		EventsMaxBytes:    int64(p.int("ESIMFLOW_EVENTS_MAX_BYTES", get)),
		SeenTTL:           p.duration("ESIMFLOW_SEEN_TTL", get),
		MaxDeliver:        p.int("ESIMFLOW_MAX_DELIVER", get),
		ProcessorBatch:    p.int("ESIMFLOW_PROCESSOR_BATCH", get),
		AdminToken:        get("ESIMFLOW_ADMIN_TOKEN"),
		IngestMaxBody:     int64(p.int("ESIMFLOW_INGEST_MAX_BODY", get)),
		PublishTimeout:    p.duration("ESIMFLOW_INGEST_PUBLISH_TIMEOUT", get),
		LowDataThresholds: p.ints("ESIMFLOW_LOW_DATA_THRESHOLDS", get),
		APIURL:            get("ESIMFLOW_API_URL"),
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

// Validate checks values that parse but make no sense.
func (c Config) Validate() error {
	var errs []error
	bad := func(env, why string) { errs = append(errs, fmt.Errorf("%s: %s", env, why)) }
	if c.Namespace != "" && !namespaceRE.MatchString(c.Namespace) {
		bad("ESIMFLOW_NAMESPACE", "want up to 32 letters, digits, '-' or '_', starting with a letter or digit")
	}
	if c.NATSURL != "" {
		if _, err := url.Parse(c.NATSURL); err != nil {
			bad("ESIMFLOW_NATS_URL", err.Error())
		}
	}
	if c.RedisURL != "" {
		u, err := url.Parse(c.RedisURL)
		if err != nil || (u.Scheme != "redis" && u.Scheme != "rediss" && u.Scheme != "unix") {
			bad("ESIMFLOW_REDIS_URL", "want redis://, rediss:// or unix://")
		}
	}
	if u, err := url.Parse(c.APIURL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		bad("ESIMFLOW_API_URL", "want http://host:port or https://host:port")
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
	if c.PublishTimeout <= 0 || c.PublishTimeout > 4*time.Second {
		bad("ESIMFLOW_INGEST_PUBLISH_TIMEOUT", "want more than 0 and at most 4s (the provider waits 5s)")
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
	return errors.Join(errs...)
}

// LogValue lists the effective settings with secrets redacted.
func (c Config) LogValue() slog.Value {
	redisURL := c.RedisURL
	if u, err := url.Parse(redisURL); err == nil && u.User != nil {
		redisURL = u.Redacted()
	}
	return slog.GroupValue(
		slog.String("nats", orDefault(c.NATSURL, "embedded")),
		slog.String("redis", orDefault(redisURL, "none (NATS KV store)")),
		slog.String("http", c.HTTPAddr),
		slog.String("admin", c.AdminAddr),
		slog.String("namespace", c.Namespace),
		slog.Bool("admin_token", c.AdminToken != ""),
		slog.Any("low_data_thresholds", c.LowDataThresholds),
	)
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
