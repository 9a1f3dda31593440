package ingest_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/esimflow/esimflow/ingest/verify"
	"github.com/esimflow/esimflow/shared/natstest"
	"github.com/esimflow/esimflow/shared/stream"
)

// The regression suite of issue 13 for ingest: each test is named for the
// attack it stops and failed on the code before the fix.

// forgedQuery is an event an attacker wants stored: the customer's eSIM
// "used up", carried in the query string of a bodyless POST.
var forgedQuery = url.Values{"notifyType": {"ESIM_STATUS"}, "iccid": {"8943108170000828413"}, "esimStatus": {"USED_UP"}}.Encode()

func rawPost(t *testing.T, u, contentType, body string, headers map[string]string) int {
	t.Helper()
	r, err := http.NewRequest(http.MethodPost, u, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		r.Header.Set("Content-Type", contentType)
	}
	for k, v := range headers {
		r.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestSecurityBodylessPostCannotForgeEvent: with the header-HMAC mode, the
// signature of the empty body is a constant anyone can compute once; a
// bodyless POST carrying the event in its query string must not be stored.
func TestSecurityBodylessPostCannotForgeEvent(t *testing.T) {
	f := start(t, natstest.Start(t), map[string]string{
		"ESIMFLOW_INGEST_SIGNATURE_HEADER":  "X-Signature",
		"ESIMFLOW_INGEST_SIGNATURE_SECRETS": "provider-secret",
	})
	m := hmac.New(sha256.New, []byte("provider-secret"))
	emptySig := hex.EncodeToString(m.Sum(nil)) // HMAC(secret, ""): a constant
	before := f.stored(t, stream.Events)
	if code := rawPost(t, f.url+"/webhooks/esim?"+forgedQuery, "application/json", "", map[string]string{"X-Signature": emptySig}); code != http.StatusUnauthorized {
		t.Errorf("bodyless POST signed over the empty body: %d, want 401", code)
	}
	if after := f.stored(t, stream.Events); after != before {
		t.Errorf("the forged query-string event was stored (%d → %d)", before, after)
	}
}

// TestSecurityCapturedBodylessRequestCannotForgeEvents: with Standard
// Webhooks, one captured bodyless request (its signature covers id,
// timestamp and the empty body) must not carry a query string of the
// attacker's choosing into the store.
func TestSecurityCapturedBodylessRequestCannotForgeEvents(t *testing.T) {
	f := start(t, natstest.Start(t), map[string]string{"ESIMFLOW_INGEST_HMAC_SECRETS": swSecret})
	sw, err := verify.NewStandardWebhooks([]string{swSecret}, 5*time.Minute, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	captured := map[string]string{
		"webhook-id":        "msg_captured",
		"webhook-timestamp": strconv.FormatInt(now.Unix(), 10),
		"webhook-signature": sw.Sign("msg_captured", now, nil),
	}
	before := f.stored(t, stream.Events)
	if code := rawPost(t, f.url+"/webhooks/esim?"+forgedQuery, "application/json", "", captured); code != http.StatusUnauthorized {
		t.Errorf("captured bodyless request with a new query string: %d, want 401", code)
	}
	if after := f.stored(t, stream.Events); after != before {
		t.Errorf("the forged query-string event was stored (%d → %d)", before, after)
	}
}

// TestSecuritySignedFormIsNotRewrittenIntoAnotherEvent: where a signature is
// configured, what is stored is the signed bytes; a form body would be
// rewritten into JSON the sender never signed, so it is refused.
func TestSecuritySignedFormIsNotRewrittenIntoAnotherEvent(t *testing.T) {
	f := start(t, natstest.Start(t), map[string]string{
		"ESIMFLOW_INGEST_SIGNATURE_HEADER":  "X-Signature",
		"ESIMFLOW_INGEST_SIGNATURE_SECRETS": "provider-secret",
	})
	hh := verify.NewHeaderHMAC("X-Signature", "hex", []string{"provider-secret"})
	before := f.stored(t, stream.Events)
	if code := rawPost(t, f.url+"/webhooks/esim", "application/x-www-form-urlencoded", forgedQuery, map[string]string{"X-Signature": hh.Sign([]byte(forgedQuery))}); code != http.StatusUnsupportedMediaType {
		t.Errorf("signed form body: %d, want 415", code)
	}
	if after := f.stored(t, stream.Events); after != before {
		t.Errorf("a signed form was stored rewritten (%d → %d)", before, after)
	}
	// The same event as signed JSON is stored as it was signed.
	body := `{"notifyType":"ESIM_STATUS","content":{"iccid":"8943108170000828413","esimStatus":"IN_USE"}}`
	if code := rawPost(t, f.url+"/webhooks/esim", "application/json", body, map[string]string{"X-Signature": hh.Sign([]byte(body))}); code != 200 {
		t.Fatalf("signed JSON: %d", code)
	}
	if m := lastMsg(t, f, stream.Events, f.names.EventSubject("ESIM_STATUS")); string(m.Data) != body {
		t.Errorf("stored %s, want the signed bytes", m.Data)
	}
}

// TestSecurityTextPlainCrossSitePostRefused: text/plain is what a web page
// can POST cross-site without a CORS preflight; ingest reads JSON (and, where
// nothing is signed, the provider's form), nothing else.
func TestSecurityTextPlainCrossSitePostRefused(t *testing.T) {
	f := start(t, natstest.Start(t), map[string]string{})
	before := f.stored(t, stream.Events)
	for _, ct := range []string{"text/plain", "text/plain;charset=UTF-8", "multipart/form-data; boundary=x"} {
		if code := rawPost(t, f.url+"/webhooks/esim", ct, goodEvent, nil); code != http.StatusUnsupportedMediaType {
			t.Errorf("%s: %d, want 415", ct, code)
		}
	}
	if after := f.stored(t, stream.Events); after != before {
		t.Errorf("a text/plain body was stored (%d → %d)", before, after)
	}
}

// TestSecurityReplayedSignedRequestNotStoredTwice: a captured signed request
// replayed inside the signature's tolerance window, after JetStream's
// duplicate window has passed, is answered 200 (a sender's honest retry
// reuses its webhook-id too) and not stored again.
func TestSecurityReplayedSignedRequestNotStoredTwice(t *testing.T) {
	f := start(t, natstest.Start(t), map[string]string{"ESIMFLOW_INGEST_HMAC_SECRETS": swSecret})
	// Shrink the duplicate window so the test need not wait two minutes.
	s, err := f.js.Stream(t.Context(), f.names.Stream(stream.Events))
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.CachedInfo().Config
	cfg.Duplicates = 100 * time.Millisecond
	if _, err := f.js.UpdateStream(t.Context(), cfg); err != nil {
		t.Fatal(err)
	}
	sw, err := verify.NewStandardWebhooks([]string{swSecret}, 5*time.Minute, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	// No timestamp, no id: an event the processor cannot tell from a new
	// fact once stored again (IN_USE after a SUSPENDED).
	body := `{"eventType":"PROFILE_STATUS","iccid":"8943108170000828413","currentStatus":"IN_USE"}`
	now := time.Now()
	captured := map[string]string{
		"webhook-id":        "msg_replayed",
		"webhook-timestamp": strconv.FormatInt(now.Unix(), 10),
		"webhook-signature": sw.Sign("msg_replayed", now, []byte(body)),
	}
	before := f.stored(t, stream.Events)
	if code := rawPost(t, f.url+"/webhooks/esim", "application/json", body, captured); code != 200 {
		t.Fatalf("first delivery: %d", code)
	}
	time.Sleep(300 * time.Millisecond) // let the duplicate window pass: time itself is the condition
	if code := rawPost(t, f.url+"/webhooks/esim", "application/json", body, captured); code != 200 {
		t.Errorf("replay: %d, want 200 (answered, not stored)", code)
	}
	if after := f.stored(t, stream.Events); after != before+1 {
		t.Errorf("events %d → %d: the replay was stored again", before, after)
	}
}

// TestSecurityHugeNotifyIDStoredNotRetriedForever: a notifyId over 64 KiB
// used to become a Nats-Msg-Id JetStream refuses; ingest answered 503, the
// provider retried forever and the event was never stored. It is stored now
// (its id hashed into the dedupe key) and answered 200.
func TestSecurityHugeNotifyIDStoredNotRetriedForever(t *testing.T) {
	f := start(t, natstest.Start(t), map[string]string{})
	body := `{"notifyType":"ESIM_STATUS","notifyId":"` + strings.Repeat("9", 70_000) + `","content":{"iccid":"8943108170000828413","esimStatus":"IN_USE"}}`
	before := f.stored(t, stream.Events)
	if code := rawPost(t, f.url+"/webhooks/esim", "application/json", body, nil); code != 200 {
		t.Errorf("huge notifyId: %d, want 200", code)
	}
	if after := f.stored(t, stream.Events); after != before+1 {
		t.Errorf("events %d → %d, want it stored", before, after)
	}
	m := lastMsg(t, f, stream.Events, f.names.EventSubject("ESIM_STATUS"))
	if k := stream.DedupeKey(m.Header); len(k) > 128 {
		t.Errorf("stored with a dedupe key of %d bytes", len(k))
	}
}

// TestSecurityEventTooLargeForStreamIs4xxNotRetryForever: an event NATS
// refuses for its size (here over the server's max payload, with ingest's
// body limit set above it) gets 413, not the 503 that makes a provider retry
// the same bytes forever.
func TestSecurityEventTooLargeForStreamIs4xxNotRetryForever(t *testing.T) {
	f := start(t, natstest.Start(t), map[string]string{"ESIMFLOW_INGEST_MAX_BODY": strconv.Itoa(4 << 20)})
	body := `{"eventType":"UNKNOWN","pad":"` + strings.Repeat("x", 2<<20) + `"}`
	if code := rawPost(t, f.url+"/webhooks/esim", "application/json", body, nil); code != http.StatusRequestEntityTooLarge {
		t.Errorf("event over the max payload: %d, want 413", code)
	}
}
