package verify_test

import (
	"encoding/base64"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/esimflow/esimflow/ingest/verify"
)

func request(headers map[string]string) *http.Request {
	r := httptest.NewRequest(http.MethodPost, "/webhooks/esim", nil)
	r.RemoteAddr = "10.0.0.9:5555"
	for k, v := range headers {
		r.Header.Set(k, v)
	}
	return r
}

func status(err error) int {
	if err == nil {
		return 200
	}
	f, ok := verify.AsFailure(err)
	if !ok {
		return -1
	}
	return f.Status
}

func TestTokens(t *testing.T) {
	c := verify.NewTokens([]string{"old", "new"})
	for tok, want := range map[string]int{"old": 200, "new": 200, "": 401, "ol": 401, "newer": 401} {
		if got := status(c.Verify(verify.Request{HTTP: request(nil), Token: tok})); got != want {
			t.Errorf("token %q: %d, want %d", tok, got, want)
		}
	}
}

func TestStandardWebhooksRotation(t *testing.T) {
	key := func(s string) string { return "whsec_" + base64.StdEncoding.EncodeToString([]byte(s)) }
	now := time.Unix(1_700_000_000, 0)
	clock := func() time.Time { return now }
	oldSender, _ := verify.NewStandardWebhooks([]string{key("old-key")}, time.Minute, clock)
	receiver, err := verify.NewStandardWebhooks([]string{key("new-key"), key("old-key")}, time.Minute, clock)
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"a":1}`)
	ts := strconv.FormatInt(now.Unix(), 10)
	h := map[string]string{"webhook-id": "m1", "webhook-timestamp": ts,
		// Several signatures, as a sender mid-rotation sends: one valid is enough.
		"webhook-signature": "v1,AAAA v2,zzz " + oldSender.Sign("m1", now, body)}
	if err := receiver.Verify(verify.Request{HTTP: request(h), Body: body}); err != nil {
		t.Errorf("old secret during rotation: %v", err)
	}
	h["webhook-id"] = "m2" // the id is signed: changing it breaks the signature
	if got := status(receiver.Verify(verify.Request{HTTP: request(h), Body: body})); got != 401 {
		t.Errorf("changed id: %d", got)
	}
	if _, err := verify.NewStandardWebhooks([]string{"whsec_!!!"}, time.Minute, clock); err == nil {
		t.Error("a secret that is not base64 was accepted")
	}
}

func TestHeaderHMAC(t *testing.T) {
	body := []byte(`{"eventType":"DATA_USAGE"}`)
	for _, enc := range []string{"hex", "base64"} {
		c := verify.NewHeaderHMAC("X-Signature", enc, []string{"k2", "k1"})
		signer := verify.NewHeaderHMAC("X-Signature", enc, []string{"k1"})
		sig := signer.Sign(body)
		tests := map[string]struct {
			header string
			want   int
		}{
			"plain":       {sig, 200},
			"prefixed":    {"sha256=" + sig, 200},
			"missing":     {"", 401},
			"garbage":     {"not a signature", 401},
			"other bytes": {verify.NewHeaderHMAC("X", enc, []string{"k3"}).Sign(body), 401},
		}
		for name, tt := range tests {
			r := request(map[string]string{"X-Signature": tt.header})
			if got := status(c.Verify(verify.Request{HTTP: r, Body: body})); got != tt.want {
				t.Errorf("%s/%s: %d, want %d", enc, name, got, tt.want)
			}
		}
	}
}

func TestClientIP(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	ip := verify.NewClientIP(trusted)
	tests := []struct {
		name, remote, xff, want string
	}{
		{"direct client, header ignored", "198.51.100.7:1", "203.0.113.5", "198.51.100.7"},
		{"through a trusted proxy", "10.0.0.9:1", "203.0.113.5", "203.0.113.5"},
		{"client-forged left entry ignored", "10.0.0.9:1", "1.2.3.4, 203.0.113.5", "203.0.113.5"},
		{"two trusted hops", "10.0.0.9:1", "203.0.113.5, 10.1.1.1", "203.0.113.5"},
		{"garbled chain trusts nothing", "10.0.0.9:1", "203.0.113.5, bogus", "invalid IP"},
		{"proxy without header", "10.0.0.9:1", "", "10.0.0.9"},
		{"IPv4-mapped IPv6 peer", "[::ffff:198.51.100.7]:1", "", "198.51.100.7"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := request(map[string]string{"X-Forwarded-For": tt.xff})
			r.RemoteAddr = tt.remote
			if got := ip.Of(r).String(); got != tt.want {
				t.Errorf("got %s, want %s", got, tt.want)
			}
		})
	}
	allow := verify.NewAllowlist([]netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")}, ip)
	r := request(map[string]string{"X-Forwarded-For": "203.0.113.5"})
	if err := allow.Verify(verify.Request{HTTP: r}); err != nil {
		t.Errorf("allowed sender: %v", err)
	}
	r = request(nil)
	var f *verify.Failure
	if err := allow.Verify(verify.Request{HTTP: r}); !errors.As(err, &f) || f.Status != 403 || f.Reason != verify.ReasonIP {
		t.Errorf("sender outside: %v", err)
	}
}
