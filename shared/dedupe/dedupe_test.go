package dedupe_test

import (
	"fmt"
	"testing"

	"github.com/esimflow/esimflow/shared/dedupe"
	"github.com/esimflow/esimflow/shared/event"
)

func key(body string) string {
	ev, err := event.Decode([]byte(body))
	return dedupe.Key(ev, err, []byte(body))
}

func TestKey(t *testing.T) {
	same := []struct{ name, a, b string }{
		{"key order and spacing",
			`{"eventType":"PROFILE_STATUS","iccid":"1","currentStatus":"ACTIVATED","timestamp":"2024-01-15T14:00:00Z"}`,
			`{ "timestamp":"2024-01-15T14:00:00Z", "currentStatus":"ACTIVATED", "iccid":"1", "eventType":"PROFILE_STATUS" }`},
		{"number or numeric string",
			`{"eventType":"DATA_USAGE","iccid":"1","usedVolume":800,"totalVolume":1000,"usagePercent":80,"timestamp":1705327200}`,
			`{"eventType":"DATA_USAGE","iccid":"1","usedVolume":"800","totalVolume":"1000","usagePercent":"80","timestamp":"1705327200"}`},
		{"same instant in another zone",
			`{"eventType":"PROFILE_STATUS","iccid":"1","currentStatus":"ACTIVATED","timestamp":"2024-01-15T14:00:00Z"}`,
			`{"eventType":"PROFILE_STATUS","iccid":"1","currentStatus":"ACTIVATED","timestamp":"2024-01-15T15:00:00+01:00"}`},
		{"unknown type, keys reordered", `{"eventType":"REFUND","a":1,"b":2}`, `{"b":2,"eventType":"REFUND","a":1}`},
		{"notifyId wins over content", `{"notifyType":"ESIM_STATUS","notifyId":"n1","content":{"iccid":"1","esimStatus":"IN_USE"}}`,
			`{"notifyType":"ESIM_STATUS","notifyId":"n1","content":{"iccid":"1","esimStatus":"IN_USE","extra":true}}`},
		{"unmapped field does not matter", `{"eventType":"PROFILE_STATUS","iccid":"1","currentStatus":"ACTIVATED","timestamp":"2024-01-15T14:00:00Z"}`,
			`{"eventType":"PROFILE_STATUS","iccid":"1","currentStatus":"ACTIVATED","timestamp":"2024-01-15T14:00:00Z","note":"retry"}`},
	}
	for _, tt := range same {
		t.Run("same/"+tt.name, func(t *testing.T) {
			if ka, kb := key(tt.a), key(tt.b); ka != kb {
				t.Errorf("keys differ: %s vs %s", ka, kb)
			}
		})
	}
	differ := []struct{ name, a, b string }{
		{"status", `{"eventType":"PROFILE_STATUS","iccid":"1","currentStatus":"ACTIVATED","timestamp":"2024-01-15T14:00:00Z"}`, `{"eventType":"PROFILE_STATUS","iccid":"1","currentStatus":"SUSPENDED","timestamp":"2024-01-15T14:00:00Z"}`},
		{"iccid", `{"eventType":"PROFILE_STATUS","iccid":"1","currentStatus":"ACTIVATED","timestamp":"2024-01-15T14:00:00Z"}`, `{"eventType":"PROFILE_STATUS","iccid":"2","currentStatus":"ACTIVATED","timestamp":"2024-01-15T14:00:00Z"}`},
		{"timestamp", `{"eventType":"PROFILE_STATUS","iccid":"1","currentStatus":"A","timestamp":"2024-01-15T14:00:00Z"}`, `{"eventType":"PROFILE_STATUS","iccid":"1","currentStatus":"A","timestamp":"2024-01-15T14:00:01Z"}`},
		{"usage", `{"eventType":"DATA_USAGE","iccid":"1","usagePercent":80,"timestamp":"2024-01-15T14:00:00Z"}`, `{"eventType":"DATA_USAGE","iccid":"1","usagePercent":100,"timestamp":"2024-01-15T14:00:00Z"}`},
		{"type", `{"eventType":"PROFILE_STATUS","iccid":"1","currentStatus":"IN_USE","timestamp":"2024-01-15T14:00:00Z"}`, `{"notifyType":"ESIM_STATUS","eventGenerateTime":"2024-01-15T14:00:00Z","content":{"iccid":"1","esimStatus":"IN_USE"}}`},
		{"validity days", `{"notifyType":"VALIDITY_USAGE","eventGenerateTime":"2024-01-15T14:00:00Z","content":{"iccid":"1","remain":3}}`, `{"notifyType":"VALIDITY_USAGE","eventGenerateTime":"2024-01-15T14:00:00Z","content":{"iccid":"1","remain":1}}`},
		{"order", `{"eventType":"ORDER_STATUS","orderNo":"A","status":"GOT_RESOURCE","timestamp":"2024-01-15T14:00:00Z"}`, `{"eventType":"ORDER_STATUS","orderNo":"B","status":"GOT_RESOURCE","timestamp":"2024-01-15T14:00:00Z"}`},
		{"order's profiles", `{"eventType":"ORDER_STATUS","orderNo":"A","status":"GOT_RESOURCE","timestamp":"2024-01-15T12:30:45Z","profiles":[{"iccid":"1"}]}`,
			`{"eventType":"ORDER_STATUS","orderNo":"A","status":"GOT_RESOURCE","timestamp":"2024-01-15T12:30:45Z","profiles":[{"iccid":"1"},{"iccid":"2"}]}`},
		{"previous status", `{"eventType":"PROFILE_STATUS","iccid":"1","previousStatus":"GOT_RESOURCE","currentStatus":"ACTIVATED","timestamp":"2024-01-15T14:00:00Z"}`,
			`{"eventType":"PROFILE_STATUS","iccid":"1","previousStatus":"SUSPENDED","currentStatus":"ACTIVATED","timestamp":"2024-01-15T14:00:00Z"}`},
		{"provider sequence", `{"eventType":"PROFILE_STATUS","iccid":"1","currentStatus":"ACTIVATED","seqNumber":1}`,
			`{"eventType":"PROFILE_STATUS","iccid":"1","currentStatus":"ACTIVATED","seqNumber":3}`},
	}
	for _, tt := range differ {
		t.Run("differ/"+tt.name, func(t *testing.T) {
			if key(tt.a) == key(tt.b) {
				t.Errorf("same key for different events")
			}
		})
	}
}

// TestKeyUntimedEventsHaveNone (issue 14, case 1): an event with neither an
// id nor a time may repeat as a new fact (IN_USE → SUSPENDED → IN_USE), so
// no key may drop it: ingest stores it every time, and the processor keys it
// by its stream sequence.
func TestKeyUntimedEventsHaveNone(t *testing.T) {
	for _, body := range []string{
		`{"notifyType":"ESIM_STATUS","content":{"iccid":"1","esimStatus":"IN_USE","smdpStatus":"ENABLED"}}`,
		`{"eventType":"PROFILE_STATUS","iccid":"1","previousStatus":"SUSPENDED","currentStatus":"ACTIVATED"}`,
		`{"eventType":"PROFILE_STATUS","iccid":"1","currentStatus":"ACTIVATED","timestamp":0}`,
		`{"eventType":"DATA_USAGE","iccid":"1","usagePercent":80}`,
		`{"eventType":"ORDER_STATUS","orderNo":"A","status":"GOT_RESOURCE"}`,
	} {
		if k := key(body); k != "" {
			t.Errorf("%s: key %q, want none", body, k)
		}
	}
	body := []byte(`{"notifyType":"ESIM_STATUS","content":{"iccid":"1","esimStatus":"IN_USE"}}`)
	if a, b := dedupe.SeqKey(7, body), dedupe.SeqKey(7, body); a != b || len(a) > dedupe.MaxKeyLen {
		t.Errorf("SeqKey not stable: %q %q", a, b)
	}
	if dedupe.SeqKey(7, body) == dedupe.SeqKey(9, body) {
		t.Error("the same bytes stored twice share a seen key")
	}
	// Malformed and unknown bodies keep a content key: the processor only
	// parks or dead-letters them, so a repeat adds nothing.
	if key(`{"eventType":"REFUND","orderNo":"A"}`) == "" || key(`{"eventType":"DATA_USAGE","iccid":"1","usedVolume":"lots"}`) == "" {
		t.Error("unknown or malformed body without a key")
	}
}

func ExampleKey() {
	body := []byte(`{"notifyType":"ORDER_STATUS","notifyId":"9f2c","content":{"orderNo":"B23110718759768","orderStatus":"GOT_RESOURCE"}}`)
	ev, err := event.Decode(body)
	fmt.Println(dedupe.Key(ev, err, body))
	body = []byte(`{"eventType":"PROFILE_STATUS","iccid":"8901234567890123456","currentStatus":"ACTIVATED","timestamp":"2024-01-15T14:00:00Z"}`)
	ev, err = event.Decode(body)
	fmt.Println(dedupe.Key(ev, err, body))
	// Output:
	// n:9f2c
	// e:8b86d3c74fdf968f98f5ab90d8cec1c5
}
