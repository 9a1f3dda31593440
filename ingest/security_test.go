package ingest_test

import (
	"bufio"
	"context"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/esimflow/esimflow/ingest/verify"
	"github.com/esimflow/esimflow/shared/natstest"
	"github.com/esimflow/esimflow/shared/stream"
)

var swSecret = "whsec_" + base64.StdEncoding.EncodeToString([]byte("provider-signing-key-0123456789"))

const goodEvent = `{"eventType":"PROFILE_STATUS","iccid":"8901","currentStatus":"ACTIVATED","timestamp":"2024-01-15T14:00:00Z"}`

// req is one request of the bad-input table.
type req struct {
	path        string
	body        string
	contentType string
	headers     map[string]string
	signAt      time.Time // zero: now
	noSign      bool
	badSign     bool
}

func (f fixture) send(t *testing.T, sw *verify.StandardWebhooks, r req) (*http.Response, string) {
	t.Helper()
	if r.path == "" {
		r.path = "/webhooks/esim/tok-new"
	}
	hr, err := http.NewRequest(http.MethodPost, f.url+r.path, strings.NewReader(r.body))
	if err != nil {
		t.Fatal(err)
	}
	hr.Header.Set("Content-Type", "application/json")
	if r.contentType != "" {
		hr.Header.Set("Content-Type", r.contentType)
	}
	hr.Header.Set("X-Forwarded-For", "203.0.113.5")
	if !r.noSign {
		at := r.signAt
		if at.IsZero() {
			at = time.Now()
		}
		hr.Header.Set("webhook-id", "msg_1")
		hr.Header.Set("webhook-timestamp", strconv.FormatInt(at.Unix(), 10))
		sig := sw.Sign("msg_1", at, []byte(r.body))
		if r.badSign {
			sig = sw.Sign("msg_1", at, []byte(r.body+" "))
		}
		hr.Header.Set("webhook-signature", sig)
	}
	for k, v := range r.headers {
		hr.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(hr)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func (f fixture) stored(t *testing.T, name string) uint64 {
	t.Helper()
	s, err := f.js.Stream(context.Background(), f.names.Stream(name))
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return info.State.Msgs
}

var guarded = map[string]string{
	"ESIMFLOW_INGEST_TOKENS":          "tok-old,tok-new",
	"ESIMFLOW_INGEST_HMAC_SECRETS":    swSecret,
	"ESIMFLOW_INGEST_ALLOW_CIDRS":     "203.0.113.0/24",
	"ESIMFLOW_INGEST_TRUSTED_PROXIES": "127.0.0.1/32",
	"ESIMFLOW_INGEST_MAX_BODY":        "4096",
}

// TestBadInputs sends what an attacker or a broken client would, with every
// check configured at once; each is refused with its status and nothing
// reaches ESIM_EVENTS.
func TestBadInputs(t *testing.T) {
	f := start(t, natstest.Start(t), copyEnv(guarded))
	sw, err := verify.NewStandardWebhooks([]string{swSecret}, 5*time.Minute, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	nested := strings.Repeat("[", 200) + strings.Repeat("]", 200)
	tests := []struct {
		name string
		req  req
		want int
	}{
		{"no signature", req{body: goodEvent, noSign: true}, 401},
		{"invalid signature", req{body: goodEvent, badSign: true}, 401},
		{"expired timestamp", req{body: goodEvent, signAt: time.Now().Add(-10 * time.Minute)}, 401},
		{"replayed capture from yesterday", req{body: goodEvent, signAt: time.Now().Add(-24 * time.Hour)}, 401},
		{"timestamp from the future", req{body: goodEvent, signAt: time.Now().Add(10 * time.Minute)}, 401},
		{"wrong token", req{path: "/webhooks/esim/tok-guess", body: goodEvent}, 401},
		{"no token", req{path: "/webhooks/esim", body: goodEvent}, 401},
		{"IP outside the allowlist", req{body: goodEvent, headers: map[string]string{"X-Forwarded-For": "198.51.100.1"}}, 403},
		{"spoofed X-Forwarded-For", req{body: goodEvent, headers: map[string]string{"X-Forwarded-For": "203.0.113.5, 198.51.100.1"}}, 403},
		{"oversize body", req{body: `{"eventType":"X","pad":"` + strings.Repeat("x", 5000) + `"}`}, 413},
		{"wrong content type", req{body: goodEvent, contentType: "text/xml"}, 415},
		{"garbled content type", req{body: goodEvent, contentType: "application/json; =="}, 415},
		{"truncated JSON", req{body: goodEvent[:40]}, 400},
		{"deeply nested JSON", req{body: nested}, 400},
		{"non-UTF-8", req{body: "{\"eventType\":\"PROFILE_STATUS\",\"iccid\":\"\xff\xfe\"}"}, 400},
		{"empty body, signed", req{body: ""}, 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := f.stored(t, stream.Events)
			resp, body := f.send(t, sw, tt.req)
			if resp.StatusCode != tt.want || !strings.Contains(body, `"error"`) {
				t.Errorf("got %d %s, want %d with a JSON error", resp.StatusCode, body, tt.want)
			}
			if after := f.stored(t, stream.Events); after != before {
				t.Errorf("a refused request was published (%d → %d events)", before, after)
			}
		})
	}

	t.Run("the same request, well formed, is stored", func(t *testing.T) {
		before := f.stored(t, stream.Events)
		for _, path := range []string{"/webhooks/esim/tok-new", "/api/webhooks/esim/tok-old"} {
			if resp, body := f.send(t, sw, req{path: path, body: goodEvent}); resp.StatusCode != 200 {
				t.Fatalf("%s: %d %s", path, resp.StatusCode, body)
			}
		}
		if after := f.stored(t, stream.Events); after != before+1 {
			t.Errorf("events %d → %d, want one more (the second is a duplicate)", before, after)
		}
	})
}

func copyEnv(m map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		out[k] = v
	}
	return out
}

// TestFormAndHealth: the eSIM Access test tool's form posts decode into the
// same JSON; health checks and HEAD probes are answered without storing.
func TestFormAndHealth(t *testing.T) {
	f := start(t, natstest.Start(t), map[string]string{})
	post := func(ct, body, query string) int {
		resp, err := http.Post(f.url+"/webhooks/esim"+query, ct, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	form := `notifyType=ORDER_STATUS&content=%7B%22orderNo%22%3A%22B23110718759768%22%2C%22transactionId%22%3A%22test%22%2C%22orderStatus%22%3A%22GOT_RESOURCE%22%7D`
	if code := post("application/x-www-form-urlencoded", form, ""); code != 200 {
		t.Fatalf("form with content=: %d", code)
	}
	m := lastMsg(t, f, stream.Events, f.names.EventSubject("ORDER_STATUS"))
	if !strings.Contains(string(m.Data), `"orderStatus":"GOT_RESOURCE"`) || !strings.HasPrefix(string(m.Data), "{") {
		t.Errorf("stored %s", m.Data)
	}
	flat := "notifyType=ESIM_STATUS&iccid=8943108170000828413&esimStatus=IN_USE&smdpStatus=ENABLED"
	if code := post("application/json", "", "?"+flat); code != 200 {
		t.Fatalf("query-string form: %d", code)
	}
	if m := lastMsg(t, f, stream.Events, f.names.EventSubject("ESIM_STATUS")); !strings.Contains(string(m.Data), `"content":{`) {
		t.Errorf("flat form not wrapped in content: %s", m.Data)
	}

	bracket := "notifyType=ESIM_STATUS&notifyId=n-bracket&content%5Biccid%5D=8943108170000828414&content%5BesimStatus%5D=IN_USE&content[smdpStatus]=ENABLED"
	if code := post("application/x-www-form-urlencoded", bracket, ""); code != 200 {
		t.Fatalf("form with bracket keys: %d", code)
	}
	if m := lastMsg(t, f, stream.Events, f.names.EventSubject("ESIM_STATUS")); !strings.Contains(string(m.Data), `"iccid":"8943108170000828414"`) ||
		!strings.Contains(string(m.Data), `"smdpStatus":"ENABLED"`) {
		t.Errorf("bracket keys not read into content: %s", m.Data)
	}

	before := f.stored(t, stream.Events)
	if code := post("application/json", `{"notifyType":"CHECK_HEALTH","content":{}}`, ""); code != 200 {
		t.Errorf("health check: %d", code)
	}
	resp, err := http.Head(f.url + "/webhooks/esim")
	if err != nil || resp.StatusCode != 200 {
		t.Errorf("HEAD: %v %v", resp, err)
	}
	if after := f.stored(t, stream.Events); after != before {
		t.Errorf("health check or HEAD stored an event")
	}
}

func TestRateLimit(t *testing.T) {
	f := start(t, natstest.Start(t), map[string]string{"ESIMFLOW_INGEST_RATE_LIMIT": "1", "ESIMFLOW_INGEST_RATE_BURST": "3"})
	codes := map[int]int{}
	var retryAfter string
	for i := range 10 {
		resp, err := http.Post(f.url+"/webhooks/esim", "application/json", strings.NewReader(fmt.Sprintf(`{"eventType":"X","n":%d}`, i)))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		codes[resp.StatusCode]++
		if resp.StatusCode == 429 {
			retryAfter = resp.Header.Get("Retry-After")
		}
	}
	if codes[200] < 3 || codes[429] == 0 || retryAfter == "" {
		t.Errorf("answers %v, Retry-After %q: want the burst through, then 429 with Retry-After", codes, retryAfter)
	}
}

// TestSlowLoris: a client that trickles its headers is cut off by the read
// timeout, and nothing is published.
func TestSlowLoris(t *testing.T) {
	f := start(t, natstest.Start(t), map[string]string{})
	before := f.stored(t, stream.Events)
	conn, err := net.Dial("tcp", strings.TrimPrefix(f.url, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprint(conn, "POST /webhooks/esim HTTP/1.1\r\nHost: x\r\nContent-Length: 200\r\n")
	closed := make(chan error, 1)
	go func() {
		_, err := bufio.NewReader(conn).ReadString('\n')
		closed <- err
	}()
	// Keep trickling a header byte now and then, as slow-loris does.
	for i := 0; ; i++ {
		select {
		case <-closed:
			if after := f.stored(t, stream.Events); after != before {
				t.Errorf("the slow request was published")
			}
			return
		case <-time.After(300 * time.Millisecond):
			if i > 100 {
				t.Fatal("the server never cut off the slow client")
			}
			_, _ = conn.Write([]byte("X"))
		}
	}
}
