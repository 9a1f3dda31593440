package config_test

import (
	"os"
	"regexp"
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
	if c.HTTPAddr != ":8080" || c.AdminAddr != ":8081" || c.DataDir != "./data" || c.IngestMaxBody != 262144 ||
		!c.EmbeddedSyncAlways || c.PublishTimeout != 2*time.Second || len(c.LowDataThresholds) != 2 ||
		c.LowDataThresholds[0] != 80 || c.LowDataThresholds[1] != 100 || c.MaxDeliver != 10 || c.StreamReplicas != 1 {
		t.Errorf("defaults: %+v", c)
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
	if got := c.LowDataThresholds; len(got) != 3 || got[0] != 50 || got[2] != 100 {
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
	if !strings.Contains(s, "[email sms webhook]") {
		t.Errorf("log value does not list the channels: %s", s)
	}
}

func TestChannels(t *testing.T) {
	c, err := config.Load(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Channels(); len(got) != 1 || got[0] != "console" {
		t.Errorf("default channels %v, want console alone", got)
	}
}

// TestReadmeTableMatches keeps the README's configuration table and Settings
// equal: same variables, same defaults.
func TestReadmeTableMatches(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	row := regexp.MustCompile("(?m)^\\| `(ESIMFLOW_[A-Z_]+)` \\| (`([^`]*)`|empty) \\|")
	documented := map[string]string{}
	for _, m := range row.FindAllStringSubmatch(string(readme), -1) {
		documented[m[1]] = m[3]
	}
	for _, s := range config.Settings {
		d, ok := documented[s.Env]
		if !ok {
			t.Errorf("README does not document %s", s.Env)
		} else if d != s.Default {
			t.Errorf("README says %s defaults to %q, the code %q", s.Env, d, s.Default)
		}
		delete(documented, s.Env)
	}
	for env := range documented {
		t.Errorf("README documents %s, which the code does not read", env)
	}
}
