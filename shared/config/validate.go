package config

import (
	"encoding/base64"
	"fmt"
	"net/mail"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/esimflow/esimflow/shared/locale"
	"time"
	_ "time/tzdata" // time zones validate the same in images without zoneinfo
)

// This file holds the checks of values that parse, setting by setting (used
// by the table) and across the settings that go together (per section).

var namespaceRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$`)

// urls checks a comma-separated list of URLs without quoting them: a parse
// error would quote the URL, password and all.
func urls(v string) string {
	for _, one := range split(v) {
		if _, err := url.Parse(one); err != nil {
			return "not a URL"
		}
	}
	return ""
}

func redisURL(v string) string {
	if v == "" {
		return ""
	}
	u, err := url.Parse(v)
	switch {
	case err != nil:
		return "want redis://, rediss://, unix://, redis+cluster:// or rediss+cluster://"
	case u.Scheme == "redis+cluster" || u.Scheme == "rediss+cluster":
		return whenf(u.Host == "", "a Redis Cluster URL lists its seeds: redis+cluster://host:port,host:port")
	}
	return whenf(u.Scheme != "redis" && u.Scheme != "rediss" && u.Scheme != "unix", "want redis://, rediss://, unix://, redis+cluster:// or rediss+cluster://")
}

func smtpURL(v string) string {
	if v == "" {
		return ""
	}
	u, err := url.Parse(v)
	return whenf(err != nil || (u.Scheme != "smtp" && u.Scheme != "smtps" && u.Scheme != "smtp+insecure") || u.Hostname() == "",
		"want smtp://[user:pass@]host[:port], smtps://… or smtp+insecure://…")
}

// templateKinds are the message kinds as templates name them.
var templateKinds = []string{"activation", "low_data", "data_exhausted", "validity_low", "topped_up", "renewed"}

func timeZone(v string) string {
	_, err := time.LoadLocation(v)
	return whenf(v == "" || err != nil, "want an IANA time zone such as Europe/Berlin or UTC")
}

func localeTag(v string) string {
	return whenf(!locale.Valid(v), "want a locale such as en, de or pt-BR")
}

func httpURL(s string) bool {
	u, err := url.Parse(s)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// resolverURL accepts the {placeholders} of a resolver template.
func resolverURL(s string) bool {
	return httpURL(strings.NewReplacer("{", "", "}", "").Replace(s))
}

// webhookSecret reports whether s is a Standard Webhooks secret.
func webhookSecret(s string) bool {
	b64, ok := strings.CutPrefix(s, "whsec_")
	key, err := base64.StdEncoding.DecodeString(b64)
	return ok && err == nil && len(key) >= 16
}

// problems collects "ENV: why" errors.
type problems []error

func (p *problems) add(env, why string) { *p = append(*p, fmt.Errorf("%s: %s", env, why)) }

func (n NATS) validate() problems {
	var p problems
	sec := NATS{CredsFile: n.CredsFile, NkeyFile: n.NkeyFile, CAFile: n.CAFile, CertFile: n.CertFile, KeyFile: n.KeyFile}
	if n.URL == "" && sec != (NATS{}) {
		p.add("ESIMFLOW_NATS_CREDS", "NATS credentials and TLS settings apply to an external NATS: set ESIMFLOW_NATS_URL")
	}
	if n.CredsFile != "" && n.NkeyFile != "" {
		p.add("ESIMFLOW_NATS_CREDS", "set a credentials file or an nkey seed file, not both")
	}
	if (n.CertFile == "") != (n.KeyFile == "") {
		p.add("ESIMFLOW_NATS_TLS_CERT", "a client certificate needs its key (ESIMFLOW_NATS_TLS_KEY) and the other way round")
	}
	return p
}

func (s Store) validate() problems {
	var p problems
	if s.CAFile+s.CertFile+s.KeyFile != "" {
		if u, err := url.Parse(s.URL); s.URL == "" || err != nil || (u.Scheme != "rediss" && u.Scheme != "rediss+cluster") {
			p.add("ESIMFLOW_REDIS_TLS_CA", "Redis TLS settings need a rediss:// or rediss+cluster:// ESIMFLOW_REDIS_URL")
		}
	}
	if (s.CertFile == "") != (s.KeyFile == "") {
		p.add("ESIMFLOW_REDIS_TLS_CERT", "a client certificate needs its key (ESIMFLOW_REDIS_TLS_KEY) and the other way round")
	}
	return p
}

func (in Ingest) validate() problems {
	var p problems
	if (in.SignatureHeader == "") != (len(in.SignatureSecrets) == 0) {
		p.add("ESIMFLOW_INGEST_SIGNATURE_HEADER", "the generic HMAC mode needs both a header and ESIMFLOW_INGEST_SIGNATURE_SECRETS")
	}
	return p
}

func (n Notifier) validate() problems {
	var p problems
	if n.Email.URL != "" {
		if a, err := mail.ParseAddress(n.Email.From); err != nil || a.Address == "" {
			p.add("ESIMFLOW_EMAIL_FROM", "want an address such as care@shop.example or `Shop <care@shop.example>` (required with ESIMFLOW_SMTP_URL)")
		}
	}
	sms := []string{n.SMS.APIURL, n.SMS.AccountSID, n.SMS.AuthToken, n.SMS.From}
	if slices.ContainsFunc(sms, func(v string) bool { return v != "" }) {
		if slices.Contains(sms, "") {
			p.add("ESIMFLOW_SMS_API_URL", "the SMS channel needs ESIMFLOW_SMS_API_URL, _ACCOUNT_SID, _AUTH_TOKEN and _FROM together")
		} else if !httpURL(n.SMS.APIURL) {
			p.add("ESIMFLOW_SMS_API_URL", "want an http:// or https:// URL")
		}
	}
	if n.WhatsApp.APIURL != "" && (n.WhatsApp.PhoneNumberID == "" || n.WhatsApp.Token == "") {
		p.add("ESIMFLOW_WHATSAPP_API_URL", "the WhatsApp channel needs ESIMFLOW_WHATSAPP_API_URL, _PHONE_NUMBER_ID and _TOKEN together")
	}
	if n.Webhook.URL != "" && !webhookSecret(n.Webhook.Secret) {
		p.add("ESIMFLOW_NOTIFY_WEBHOOK_SECRET", "want whsec_ followed by at least 16 base64-encoded bytes (required with the webhook URL)")
	}
	return p
}

func (r Reconcile) validate() problems {
	var p problems
	if r.URL == "" {
		return p
	}
	if !httpURL(r.URL) {
		p.add("ESIMFLOW_RECONCILE_URL", "want the provider's API base, http:// or https://")
	}
	if r.AccessCode == "" || r.Secret == "" {
		p.add("ESIMFLOW_RECONCILE_ACCESS_CODE", "the reconciler needs ESIMFLOW_RECONCILE_ACCESS_CODE and ESIMFLOW_RECONCILE_SECRET with its URL")
	}
	if r.Interval > r.Stale {
		p.add("ESIMFLOW_RECONCILE_INTERVAL", "want at most ESIMFLOW_RECONCILE_STALE: a sweep must come round within the stale threshold")
	}
	return p
}

// RedactURLs hides the password, or the token, of each URL in a
// comma-separated list; what is not a URL is hidden whole.
func RedactURLs(v string) string {
	var out []string
	for _, one := range split(v) {
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
