package event_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/esimflow/esimflow/shared/event"
)

// The regression suite of issue 13 for the decoder (OWASP API4, bounded
// domain values): each body is valid JSON ingest stores and answers 200 for,
// and the processor must dead-letter with the reason instead of merging.

// TestSecurityOutOfBoundsFieldsCannotPoisonState: unbounded strings, ICCIDs
// that are not ICCIDs, endless profile lists and negative figures are
// malformed, so they never reach the stored state.
func TestSecurityOutOfBoundsFieldsCannotPoisonState(t *testing.T) {
	long := func(n int) string { return strings.Repeat("A", n) }
	profiles := func(n int) string {
		var b strings.Builder
		for i := range n {
			if i > 0 {
				b.WriteByte(',')
			}
			fmt.Fprintf(&b, `{"iccid":"8901%015d","status":"GOT_RESOURCE"}`, i)
		}
		return b.String()
	}
	bad := map[string]string{
		"iccid with letters":        `{"eventType":"PROFILE_STATUS","iccid":"8901ABC","currentStatus":"ACTIVATED"}`,
		"iccid with a newline":      `{"eventType":"PROFILE_STATUS","iccid":"8901\n[console] forged line","currentStatus":"ACTIVATED"}`,
		"iccid of 23 digits":        `{"eventType":"PROFILE_STATUS","iccid":"89010000000000000000001","currentStatus":"ACTIVATED"}`,
		"profile iccid not digits":  `{"eventType":"ORDER_STATUS","orderNo":"O1","status":"GOT_RESOURCE","profiles":[{"iccid":"x"}]}`,
		"status of 65 bytes":        `{"eventType":"PROFILE_STATUS","iccid":"8901","currentStatus":"` + long(65) + `"}`,
		"previousStatus of 100 KiB": `{"eventType":"PROFILE_STATUS","iccid":"8901","currentStatus":"ACTIVATED","previousStatus":"` + long(100<<10) + `"}`,
		"smdpStatus of 65 bytes":    `{"notifyType":"ESIM_STATUS","content":{"iccid":"8901","esimStatus":"IN_USE","smdpStatus":"` + long(65) + `"}}`,
		"status with a control":     `{"eventType":"PROFILE_STATUS","iccid":"8901","currentStatus":"ACTIVATED\u001b[2J"}`,
		"orderNo of 129 bytes":      `{"eventType":"ORDER_STATUS","orderNo":"` + long(129) + `","status":"GOT_RESOURCE"}`,
		"transactionId of 129":      `{"eventType":"PROFILE_STATUS","iccid":"8901","transactionId":"` + long(129) + `","currentStatus":"ACTIVATED"}`,
		"esimTranNo of 129":         `{"eventType":"PROFILE_STATUS","iccid":"8901","esimTranNo":"` + long(129) + `","currentStatus":"ACTIVATED"}`,
		"notifyId of 129":           `{"notifyType":"ESIM_STATUS","notifyId":"` + long(129) + `","content":{"iccid":"8901","esimStatus":"IN_USE"}}`,
		"durationUnit of 65":        `{"notifyType":"VALIDITY_USAGE","content":{"iccid":"8901","durationUnit":"` + long(65) + `","remain":1}}`,
		"101 profiles in one order": `{"eventType":"ORDER_STATUS","orderNo":"O1","status":"GOT_RESOURCE","profiles":[` + profiles(101) + `]}`,
		"negative remain":           `{"notifyType":"DATA_USAGE","content":{"iccid":"8901","totalVolume":100,"orderUsage":10,"remain":-5}}`,
		"negative validity remain":  `{"notifyType":"VALIDITY_USAGE","content":{"iccid":"8901","remain":-1}}`,
		"negative totalDuration":    `{"notifyType":"VALIDITY_USAGE","content":{"iccid":"8901","remain":1,"totalDuration":-30}}`,
		"negative usage percent":    `{"eventType":"DATA_USAGE","iccid":"8901","usagePercent":-1}`,
	}
	for name, body := range bad {
		t.Run(name, func(t *testing.T) {
			ev, err := event.Decode([]byte(body))
			if !errors.Is(err, event.ErrMalformed) {
				t.Fatalf("decoded without error: %+v", ev)
			}
			if len(err.Error()) > 300 {
				t.Errorf("the reason is %d bytes: it must not carry the whole value", len(err.Error()))
			}
		})
	}
	// At the bounds: accepted.
	good := []string{
		`{"eventType":"PROFILE_STATUS","iccid":"8901000000000000000001","currentStatus":"` + long(64) + `"}`,
		`{"eventType":"ORDER_STATUS","orderNo":"` + long(128) + `","status":"GOT_RESOURCE","profiles":[` + profiles(100) + `]}`,
		`{"notifyType":"ESIM_STATUS","notifyId":"` + long(128) + `","content":{"iccid":"89852000263318806140","esimStatus":"IN_USE","smdpStatus":"ENABLED"}}`,
	}
	for _, body := range good {
		if _, err := event.Decode([]byte(body)); err != nil {
			t.Errorf("%.60s…: %v", body, err)
		}
	}
}

// TestSecurityFutureDatedEventCannotPinState: an event dated 2099 would win
// every later comparison (SUSPENDED / 100 % forever, "data exhausted" sent);
// an event time further ahead than the allowed skew is malformed, with the
// reason. Within the skew (clocks differ) it is accepted.
func TestSecurityFutureDatedEventCannotPinState(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	d := event.Decoder{Now: func() time.Time { return now }}
	for _, body := range []string{
		`{"eventType":"DATA_USAGE","iccid":"8901","usagePercent":100,"timestamp":"2099-01-01T00:00:00Z"}`,
		`{"notifyType":"ESIM_STATUS","eventGenerateTime":"2099-01-01 00:00:00","content":{"iccid":"8901","esimStatus":"SUSPENDED"}}`,
		`{"eventType":"PROFILE_STATUS","iccid":"8901","currentStatus":"SUSPENDED","timestamp":"2025-06-01T12:11:00Z"}`,
	} {
		_, err := d.Decode([]byte(body))
		if !errors.Is(err, event.ErrMalformed) || !strings.Contains(err.Error(), "future") {
			t.Errorf("%.70s…: %v, want malformed, in the future", body, err)
		}
	}
	ok := `{"eventType":"PROFILE_STATUS","iccid":"8901","currentStatus":"SUSPENDED","timestamp":"2025-06-01T12:09:00Z"}`
	if _, err := d.Decode([]byte(ok)); err != nil {
		t.Errorf("9 minutes ahead (inside the default skew): %v", err)
	}
	strict := event.Decoder{Now: d.Now, MaxSkew: time.Minute}
	if _, err := strict.Decode([]byte(ok)); err == nil {
		t.Error("MaxSkew of a minute accepted 9 minutes ahead")
	}
	// The package-level Decode uses the wall clock.
	if _, err := event.Decode([]byte(`{"eventType":"DATA_USAGE","iccid":"8901","usagePercent":100,"timestamp":"2099-01-01T00:00:00Z"}`)); !errors.Is(err, event.ErrMalformed) {
		t.Errorf("Decode of a 2099 event: %v", err)
	}
}
