package channel_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/esimflow/esimflow/notifier/channel"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

// receiver is the reseller's endpoint: it verifies each request with the
// Standard Webhooks reference library and answers the status asked for.
type receiver struct {
	t        *testing.T
	status   int
	header   http.Header
	received []channel.WebhookPayload
	ids      []string
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		rc.t.Fatal(err)
	}
	if err := wh.Verify(body, r.Header); err != nil {
		rc.t.Errorf("signature does not verify: %v (headers %v)", err, r.Header)
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	var p channel.WebhookPayload
	if err := json.Unmarshal(body, &p); err != nil || r.Header.Get("Content-Type") != "application/json" {
		rc.t.Errorf("body %s: %v", body, err)
	}
	rc.received, rc.ids = append(rc.received, p), append(rc.ids, r.Header.Get("webhook-id"))
	for k, v := range rc.header {
		w.Header()[k] = v
	}
	w.WriteHeader(rc.status)
}

func newWebhook(t *testing.T, rc *receiver) *channel.Webhook {
	t.Helper()
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	w, err := channel.NewWebhook(channel.WebhookOptions{URL: srv.URL + "/esim", Secret: secret, AllowPrivate: true, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func TestWebhookSignsAndSends(t *testing.T) {
	rc := &receiver{t: t, status: http.StatusNoContent}
	w := newWebhook(t, rc)
	m := message()
	m.OrderNo, m.TransactionID, m.Locale = "ORD1", "tx1", "en"
	for range 2 {
		if err := w.Send(context.Background(), m); err != nil {
			t.Fatalf("Send: %v", err)
		}
	}
	if len(rc.received) != 2 || rc.ids[0] != m.ID || rc.ids[1] != m.ID {
		t.Fatalf("webhook-ids %v; want the intent id on every attempt", rc.ids)
	}
	p := rc.received[0]
	d := p.Data
	if p.Type != "notification.activation" || p.Timestamp.IsZero() || d.ID != m.ID || d.ICCID != m.ICCID ||
		d.OrderNo != "ORD1" || d.TransactionID != "tx1" || d.Subject != m.Subject || d.Text != m.Text ||
		d.Contact == nil || d.Contact.Email != "ana@example.com" || d.Locale != "en" {
		t.Errorf("payload %+v", p)
	}
}

func TestWebhookSignatureMatchesReference(t *testing.T) {
	wh, err := standardwebhooks.NewWebhook(secret)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Unix(1700000000, 0)
	body := []byte(`{"a":1}`)
	want, err := wh.Sign("msg_1", at, body)
	if err != nil {
		t.Fatal(err)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		t.Fatal(err)
	}
	if got := "v1," + channel.Sign(key, "msg_1", "1700000000", body); got != want {
		t.Errorf("Sign = %q, reference %q", got, want)
	}
}

func TestWebhookFailures(t *testing.T) {
	tests := []struct {
		name       string
		status     int
		header     http.Header
		permanent  bool
		retryAfter time.Duration
	}{
		{"too many requests", 429, http.Header{"Retry-After": {"3"}}, false, 3 * time.Second},
		{"server error", 502, nil, false, 0},
		{"request timeout", 408, nil, false, 0},
		{"bad request", 400, nil, true, 0},
		{"gone", 410, nil, true, 0},
		{"redirect is not followed", 302, http.Header{"Location": {"http://169.254.169.254/"}}, true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := newWebhook(t, &receiver{t: t, status: tt.status, header: tt.header}).Send(context.Background(), message())
			if err == nil || channel.IsPermanent(err) != tt.permanent {
				t.Fatalf("err = %v (permanent %v); want permanent = %v", err, channel.IsPermanent(err), tt.permanent)
			}
			if got := channel.RetryAfter(err); got != tt.retryAfter {
				t.Errorf("RetryAfter = %v, want %v", got, tt.retryAfter)
			}
		})
	}
}

// TestWebhookRefusesPrivateTargets: without the allow switch, loopback,
// private and link-local targets are refused, as literals at start-up and as
// names at dial time (after DNS).
func TestWebhookRefusesPrivateTargets(t *testing.T) {
	for _, u := range []string{"http://127.0.0.1:9/", "http://10.1.2.3/", "http://169.254.169.254/latest/meta-data", "http://[::1]/", "http://[fd00::1]/", "http://100.64.0.1/", "http://[::ffff:127.0.0.1]/"} {
		if _, err := channel.NewWebhook(channel.WebhookOptions{URL: u, Secret: secret}); err == nil || !strings.Contains(err.Error(), "not a public address") {
			t.Errorf("%s: NewWebhook = %v; want a refusal", u, err)
		}
	}
	rc := &receiver{t: t, status: http.StatusOK}
	srv := httptest.NewServer(rc)
	t.Cleanup(srv.Close)
	byName := strings.Replace(srv.URL, "127.0.0.1", "localhost", 1)
	w, err := channel.NewWebhook(channel.WebhookOptions{URL: byName, Secret: secret})
	if err != nil {
		t.Fatal(err)
	}
	err = w.Send(context.Background(), message())
	if err == nil || !channel.IsPermanent(err) || !strings.Contains(err.Error(), "not a public address") {
		t.Errorf("send to %s: %v; want a permanent refusal", byName, err)
	}
	if len(rc.received) != 0 {
		t.Errorf("the private target got %d requests", len(rc.received))
	}
}

func TestNewWebhookValidates(t *testing.T) {
	for name, o := range map[string]channel.WebhookOptions{
		"no url":           {Secret: secret},
		"ftp url":          {URL: "ftp://shop.example", Secret: secret},
		"no secret":        {URL: "https://shop.example"},
		"secret no prefix": {URL: "https://shop.example", Secret: "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"},
		"short secret":     {URL: "https://shop.example", Secret: "whsec_YWJj"},
	} {
		if _, err := channel.NewWebhook(o); err == nil {
			t.Errorf("%s: NewWebhook succeeded", name)
		}
	}
}
