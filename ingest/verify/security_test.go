package verify_test

import (
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/esimflow/esimflow/ingest/verify"
)

// The regression suite of issue 13 for the signature checks: each test is
// named for the attack it stops and failed on the code before the fix.

func swKey(s string) string { return "whsec_" + base64.StdEncoding.EncodeToString([]byte(s)) }

// TestSecuritySignatureEntryFloodRefusedBeforeHashing: a webhook-signature
// with more entries than any sender rotates through, or longer than any
// honest header, is refused whatever it holds (even a valid signature).
func TestSecuritySignatureEntryFloodRefusedBeforeHashing(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	clock := func() time.Time { return now }
	sw, err := verify.NewStandardWebhooks([]string{swKey("key-a")}, time.Minute, clock)
	if err != nil {
		t.Fatal(err)
	}
	body := []byte(`{"eventType":"PROFILE_STATUS","iccid":"8901","currentStatus":"ACTIVATED"}`)
	good := sw.Sign("m1", now, body)
	headers := func(sig string) map[string]string {
		return map[string]string{"webhook-id": "m1", "webhook-timestamp": strconv.FormatInt(now.Unix(), 10), "webhook-signature": sig}
	}
	tests := []struct {
		name, sig string
		want      int
	}{
		{"one valid entry", good, 200},
		{"valid among 15 others (16 entries)", strings.Repeat("v1,AAAA ", 15) + good, 200},
		{"valid after 16 others (17 entries)", strings.Repeat("v1,AAAA ", 16) + good, 401},
		{"4 800 empty entries", strings.TrimSpace(strings.Repeat("v1, ", 4800)), 401},
		{"valid entry in a header over 4 KiB", good + " v2," + strings.Repeat("A", 4096), 401},
	}
	for _, tt := range tests {
		if got := status(sw.Verify(verify.Request{HTTP: request(headers(tt.sig)), Body: body})); got != tt.want {
			t.Errorf("%s: %d, want %d", tt.name, got, tt.want)
		}
	}
	h := verify.NewHeaderHMAC("X-Signature", "hex", []string{"k1"})
	long := map[string]string{"X-Signature": h.Sign(body) + strings.Repeat(" ", 5000)}
	if got := status(h.Verify(verify.Request{HTTP: request(long), Body: body})); got != 401 {
		t.Errorf("header HMAC over 4 KiB: %d, want 401", got)
	}
}

// TestReplayCacheBounded: a delivered id is a replay until its timestamp
// leaves the tolerance window; past the capacity the oldest is forgotten.
func TestReplayCacheBounded(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	sw, err := verify.NewStandardWebhooks([]string{swKey("k")}, time.Minute, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	sw.SetReplayCapacity(2)
	h := func(id string, at time.Time) http.Header {
		return http.Header{"Webhook-Id": {id}, "Webhook-Timestamp": {strconv.FormatInt(at.Unix(), 10)}}
	}
	sw.Delivered(h("a", now))
	if !sw.Replayed(h("a", now)) || sw.Replayed(h("b", now)) {
		t.Fatal("a delivered id is not a replay, or an unknown one is")
	}
	sw.Delivered(h("b", now))
	sw.Delivered(h("c", now))
	if sw.Replayed(h("a", now)) || !sw.Replayed(h("c", now)) {
		t.Error("capacity 2: want a forgotten, c remembered")
	}
	sw.Delivered(h("old", now.Add(-2*time.Minute))) // already outside the window
	if sw.Replayed(h("old", now)) {
		t.Error("an id outside the window was remembered")
	}
	now = now.Add(2 * time.Minute)
	if sw.Replayed(h("c", now)) {
		t.Error("an id is a replay after its window closed")
	}
}
