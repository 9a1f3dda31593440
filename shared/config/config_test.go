package config_test

import (
	"flag"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/esimflow/esimflow/shared/config"
)

func env(kv map[string]string) func(string) string { return func(k string) string { return kv[k] } }

func TestDefaults(t *testing.T) {
	c, err := config.Load(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if c.Ingest.HTTPAddr != "127.0.0.1:8080" || c.Admin.Addr != "127.0.0.1:8081" || c.NATS.DataDir != "./data" || c.Ingest.MaxBody != 262144 ||
		c.NATS.SyncEvery != 0 || c.Ingest.PublishTimeout != 2*time.Second || len(c.Processor.LowDataThresholds) != 2 ||
		c.Processor.LowDataThresholds[0] != 80 || c.Processor.LowDataThresholds[1] != 100 || c.MaxDeliver != 10 || c.Replicas != 1 ||
		len(c.CLI.APIURLs) != 1 || c.CLI.APIURLs[0] != "http://127.0.0.1:8081" {
		t.Errorf("defaults: %+v", c)
	}
}

// TestSectionsCarryCommon: each service is handed its section alone, so the
// shared settings must be in it.
func TestSectionsCarryCommon(t *testing.T) {
	c, err := config.Load(env(map[string]string{"ESIMFLOW_NAMESPACE": "t1", "ESIMFLOW_MAX_DELIVER": "4", "ESIMFLOW_STREAM_REPLICAS": "3"}))
	if err != nil {
		t.Fatal(err)
	}
	want := config.Common{Namespace: "t1", MaxDeliver: 4, Replicas: 3}
	for name, got := range map[string]config.Common{"top": c.Common, "store": c.Store.Common, "ingest": c.Ingest.Common,
		"processor": c.Processor.Common, "notifier": c.Notifier.Common} {
		if got != want {
			t.Errorf("%s: %+v, want %+v", name, got, want)
		}
	}
}

func TestSyncInterval(t *testing.T) {
	c, err := config.Load(env(map[string]string{"ESIMFLOW_EMBEDDED_SYNC": "2m"}))
	if err != nil || c.NATS.SyncEvery != 2*time.Minute {
		t.Errorf("sync 2m: %v, %v", c.NATS.SyncEvery, err)
	}
	for _, bad := range []string{"0", "-1s", "sometimes"} {
		if _, err := config.Load(env(map[string]string{"ESIMFLOW_EMBEDDED_SYNC": bad})); err == nil {
			t.Errorf("sync %q accepted", bad)
		}
	}
}

func TestLoadErrors(t *testing.T) {
	tests := []struct {
		name, env, value, want string
	}{
		{"namespace with a dot", "ESIMFLOW_NAMESPACE", "a.b", "ESIMFLOW_NAMESPACE"},
		{"body limit not a number", "ESIMFLOW_INGEST_MAX_BODY", "big", "ESIMFLOW_INGEST_MAX_BODY"},
		{"threshold over 100", "ESIMFLOW_LOW_DATA_THRESHOLDS", "80,120", "percents"},
		{"publish timeout past the provider's limit", "ESIMFLOW_INGEST_PUBLISH_TIMEOUT", "3s", "5s"},
		{"redis url scheme", "ESIMFLOW_REDIS_URL", "http://x", "ESIMFLOW_REDIS_URL"},
		{"sync interval", "ESIMFLOW_EMBEDDED_SYNC", "sometimes", "ESIMFLOW_EMBEDDED_SYNC"},
		{"log level", "ESIMFLOW_LOG_LEVEL", "loud", "ESIMFLOW_LOG_LEVEL"},
		{"log format", "ESIMFLOW_LOG_FORMAT", "xml", "ESIMFLOW_LOG_FORMAT"},
		{"max deliver", "ESIMFLOW_MAX_DELIVER", "1", "ESIMFLOW_MAX_DELIVER"},
		{"smtp url scheme", "ESIMFLOW_SMTP_URL", "http://mail.example", "ESIMFLOW_SMTP_URL"},
		{"smtp without sender", "ESIMFLOW_SMTP_URL", "smtp://mail.example:587", "ESIMFLOW_EMAIL_FROM"},
		{"sms half configured", "ESIMFLOW_SMS_API_URL", "https://sms.example", "_AUTH_TOKEN"},
		{"webhook without secret", "ESIMFLOW_NOTIFY_WEBHOOK_URL", "https://shop.example/hook", "ESIMFLOW_NOTIFY_WEBHOOK_SECRET"},
		{"webhook allow private", "ESIMFLOW_NOTIFY_WEBHOOK_ALLOW_PRIVATE", "maybe", "ESIMFLOW_NOTIFY_WEBHOOK_ALLOW_PRIVATE"},
		{"negative rate", "ESIMFLOW_SMS_RATE", "-1", "ESIMFLOW_SMS_RATE"},
		{"rate not a number", "ESIMFLOW_EMAIL_RATE", "fast", "ESIMFLOW_EMAIL_RATE"},
		{"locale", "ESIMFLOW_NOTIFY_LOCALE", "english!", "ESIMFLOW_NOTIFY_LOCALE"},
		{"no notifier workers", "ESIMFLOW_NOTIFY_WORKERS", "0", "ESIMFLOW_NOTIFY_WORKERS"},
		{"contact wait", "ESIMFLOW_CONTACT_WAIT", "-1m", "ESIMFLOW_CONTACT_WAIT"},
		{"resolver url", "ESIMFLOW_CONTACT_RESOLVER_URL", "ftp://x/{iccid}", "ESIMFLOW_CONTACT_RESOLVER_URL"},
		{"resolver ttl", "ESIMFLOW_CONTACT_RESOLVER_TTL", "0", "ESIMFLOW_CONTACT_RESOLVER_TTL"},
		{"nats credentials without an external nats", "ESIMFLOW_NATS_CREDS", "/user.creds", "ESIMFLOW_NATS_URL"},
		{"redis tls files without rediss", "ESIMFLOW_REDIS_TLS_CA", "/ca.pem", "rediss://"},
		{"redis cluster without seeds", "ESIMFLOW_REDIS_URL", "redis+cluster://", "seeds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Load(env(map[string]string{tt.env: tt.value}))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("err = %v, want one naming %q", err, tt.want)
			}
		})
	}
}

func TestConnectionSecurityCombinations(t *testing.T) {
	nats := "tls://nats-1:4222,tls://nats-2:4222"
	tests := []struct {
		name string
		env  map[string]string
		want string // "" = valid
	}{
		{"credentials file and TLS", map[string]string{"ESIMFLOW_NATS_URL": nats, "ESIMFLOW_NATS_CREDS": "/c", "ESIMFLOW_NATS_TLS_CA": "/ca"}, ""},
		{"credentials and nkey both", map[string]string{"ESIMFLOW_NATS_URL": nats, "ESIMFLOW_NATS_CREDS": "/c", "ESIMFLOW_NATS_NKEY": "/n"}, "not both"},
		{"nats client cert without key", map[string]string{"ESIMFLOW_NATS_URL": nats, "ESIMFLOW_NATS_TLS_CERT": "/c"}, "ESIMFLOW_NATS_TLS_KEY"},
		{"rediss with CA and client pair", map[string]string{"ESIMFLOW_REDIS_URL": "rediss://u:p@r:6380/0", "ESIMFLOW_REDIS_TLS_CA": "/ca", "ESIMFLOW_REDIS_TLS_CERT": "/c", "ESIMFLOW_REDIS_TLS_KEY": "/k"}, ""},
		{"redis key without cert", map[string]string{"ESIMFLOW_REDIS_URL": "rediss://r:6380", "ESIMFLOW_REDIS_TLS_KEY": "/k"}, "ESIMFLOW_REDIS_TLS_KEY"},
		{"redis cluster", map[string]string{"ESIMFLOW_REDIS_URL": "redis+cluster://u:p@r1:6379,r2:6379,r3:6379"}, ""},
		{"rediss cluster with CA", map[string]string{"ESIMFLOW_REDIS_URL": "rediss+cluster://r1:6380,r2:6380", "ESIMFLOW_REDIS_TLS_CA": "/ca"}, ""},
		{"redis cluster with CA but no TLS", map[string]string{"ESIMFLOW_REDIS_URL": "redis+cluster://r1:6379,r2:6379", "ESIMFLOW_REDIS_TLS_CA": "/ca"}, "rediss"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := config.Load(env(tt.env))
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("err = %v, want %q", err, tt.want)
			}
		})
	}
}

func TestThresholdsSortedAndDeduplicated(t *testing.T) {
	c, err := config.Load(env(map[string]string{"ESIMFLOW_LOW_DATA_THRESHOLDS": "100, 50,80,80"}))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Processor.LowDataThresholds; len(got) != 3 || got[0] != 50 || got[2] != 100 {
		t.Errorf("thresholds = %v", got)
	}
}

func TestSecretsRedactedInLog(t *testing.T) {
	c, err := config.Load(env(map[string]string{
		"ESIMFLOW_REDIS_URL": "redis://user:hunter2@h:6379", "ESIMFLOW_ADMIN_TOKEN": "tok3n",
		"ESIMFLOW_SMTP_URL": "smtps://mailer:smtppass@mail.example", "ESIMFLOW_EMAIL_FROM": "care@shop.example",
		"ESIMFLOW_SMS_API_URL": "https://sms.example", "ESIMFLOW_SMS_ACCOUNT_SID": "AC1", "ESIMFLOW_SMS_AUTH_TOKEN": "smstok",
		"ESIMFLOW_SMS_FROM": "+15550001111", "ESIMFLOW_NOTIFY_WEBHOOK_URL": "https://shop.example/hook",
		"ESIMFLOW_NOTIFY_WEBHOOK_SECRET": "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "ESIMFLOW_CONTACT_RESOLVER_URL": "https://shop.example/c/{iccid}",
		"ESIMFLOW_CONTACT_RESOLVER_TOKEN": "restok",
		"ESIMFLOW_NATS_URL":               "nats://esim:pa55word@n1:4222,nats://t0ken-only@n2:4222",
	}))
	if err != nil {
		t.Fatal(err)
	}
	s := c.LogValue().String()
	for _, secret := range []string{"hunter2", "tok3n", "smtppass", "smstok", "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "restok", "pa55word", "t0ken-only"} {
		if strings.Contains(s, secret) {
			t.Errorf("secret %q in log value: %s", secret, s)
		}
	}
	if !strings.Contains(s, "n1:4222") || !strings.Contains(s, "n2:4222") {
		t.Errorf("the servers should still show: %s", s)
	}
	if !strings.Contains(s, "[email sms webhook]") || !strings.Contains(s, "admin_token=(set)") {
		t.Errorf("log value does not list the channels: %s", s)
	}
}

func TestChannels(t *testing.T) {
	c, err := config.Load(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Notifier.Channels(); len(got) != 1 || got[0] != "console" {
		t.Errorf("default channels %v, want console alone", got)
	}
}

var update = flag.Bool("update", false, "rewrite docs/configuration.md from the settings table")

// TestReferenceMatches keeps docs/configuration.md equal to what the settings
// table generates: same variables, defaults and meanings.
func TestReferenceMatches(t *testing.T) {
	const path = "../../docs/configuration.md"
	want := config.Reference()
	if *update {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if string(got) != want {
		t.Errorf("%s differs from the settings table: run go test ./shared/config -update", path)
	}
}

// TestSettingsDeclaredOnce: one row per variable, each with a meaning.
func TestSettingsDeclaredOnce(t *testing.T) {
	seen := map[string]bool{}
	for _, sec := range config.Sections() {
		for _, s := range sec.Settings {
			if seen[s.Env] || !strings.HasPrefix(s.Env, "ESIMFLOW_") || s.Meaning == "" {
				t.Errorf("%s: declared twice, misnamed or without a meaning", s.Env)
			}
			seen[s.Env] = true
		}
	}
	if len(seen) != 91 {
		t.Errorf("%d settings, want the 91 the contract, the deployments and the security defaults use", len(seen))
	}
}

// TestQuietHours: the window across midnight, the default zone and kinds,
// and clear refusals.
func TestQuietHours(t *testing.T) {
	c, err := config.Load(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if q := c.Notifier.Quiet; q.On() || q.TimeZone != "UTC" || strings.Join(q.Critical, ",") != "activation,data_exhausted" {
		t.Errorf("default quiet hours %+v", q)
	}
	c, err = config.Load(env(map[string]string{"ESIMFLOW_QUIET_HOURS": "22:00-08:30", "ESIMFLOW_QUIET_HOURS_TIME_ZONE": "Asia/Tokyo"}))
	if err != nil {
		t.Fatal(err)
	}
	if q := c.Notifier.Quiet; !q.On() || q.Window != (config.ClockRange{From: 22 * 60, To: 8*60 + 30}) || q.TimeZone != "Asia/Tokyo" {
		t.Errorf("quiet hours %+v", q)
	}
	for k, v := range map[string]string{
		"ESIMFLOW_QUIET_HOURS":           "22-8",
		"ESIMFLOW_QUIET_HOURS_TIME_ZONE": "Mars/Olympus",
		"ESIMFLOW_QUIET_HOURS_CRITICAL":  "activation,bedtime",
		"ESIMFLOW_NOTIFY_CHANNELS":       "email,pigeon",
		"ESIMFLOW_WHATSAPP_API_URL":      "https://wa.example/v21.0",
	} {
		if _, err := config.Load(env(map[string]string{k: v})); err == nil || !strings.Contains(err.Error(), k) {
			t.Errorf("%s=%s: %v, want an error naming it", k, v, err)
		}
	}
}
