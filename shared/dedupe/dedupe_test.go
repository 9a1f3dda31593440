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
			`{"eventType":"DATA_USAGE","iccid":"1","usedVolume":800,"totalVolume":1000,"usagePercent":80}`,
			`{"eventType":"DATA_USAGE","iccid":"1","usedVolume":"800","totalVolume":"1000","usagePercent":"80"}`},
		{"same instant in another zone",
			`{"eventType":"PROFILE_STATUS","iccid":"1","currentStatus":"ACTIVATED","timestamp":"2024-01-15T14:00:00Z"}`,
			`{"eventType":"PROFILE_STATUS","iccid":"1","currentStatus":"ACTIVATED","timestamp":"2024-01-15T15:00:00+01:00"}`},
		{"unknown type, keys reordered", `{"eventType":"REFUND","a":1,"b":2}`, `{"b":2,"eventType":"REFUND","a":1}`},
		{"notifyId wins over content", `{"notifyType":"ESIM_STATUS","notifyId":"n1","content":{"iccid":"1","esimStatus":"IN_USE"}}`,
			`{"notifyType":"ESIM_STATUS","notifyId":"n1","content":{"iccid":"1","esimStatus":"IN_USE","extra":true}}`},
		{"unmapped field does not matter", `{"eventType":"PROFILE_STATUS","iccid":"1","currentStatus":"ACTIVATED"}`,
			`{"eventType":"PROFILE_STATUS","iccid":"1","currentStatus":"ACTIVATED","note":"retry"}`},
	}
	for _, tt := range same {
		t.Run("same/"+tt.name, func(t *testing.T) {
			if ka, kb := key(tt.a), key(tt.b); ka != kb {
				t.Errorf("keys differ: %s vs %s", ka, kb)
			}
		})
	}
	differ := []struct{ name, a, b string }{
		{"status", `{"eventType":"PROFILE_STATUS","iccid":"1","currentStatus":"ACTIVATED"}`, `{"eventType":"PROFILE_STATUS","iccid":"1","currentStatus":"SUSPENDED"}`},
		{"iccid", `{"eventType":"PROFILE_STATUS","iccid":"1","currentStatus":"ACTIVATED"}`, `{"eventType":"PROFILE_STATUS","iccid":"2","currentStatus":"ACTIVATED"}`},
		{"timestamp", `{"eventType":"PROFILE_STATUS","iccid":"1","currentStatus":"A","timestamp":"2024-01-15T14:00:00Z"}`, `{"eventType":"PROFILE_STATUS","iccid":"1","currentStatus":"A","timestamp":"2024-01-15T14:00:01Z"}`},
		{"usage", `{"eventType":"DATA_USAGE","iccid":"1","usagePercent":80}`, `{"eventType":"DATA_USAGE","iccid":"1","usagePercent":100}`},
		{"type", `{"eventType":"PROFILE_STATUS","iccid":"1","currentStatus":"IN_USE"}`, `{"notifyType":"ESIM_STATUS","content":{"iccid":"1","esimStatus":"IN_USE"}}`},
		{"validity days", `{"notifyType":"VALIDITY_USAGE","content":{"iccid":"1","remain":3}}`, `{"notifyType":"VALIDITY_USAGE","content":{"iccid":"1","remain":1}}`},
		{"order", `{"eventType":"ORDER_STATUS","orderNo":"A","status":"GOT_RESOURCE"}`, `{"eventType":"ORDER_STATUS","orderNo":"B","status":"GOT_RESOURCE"}`},
		{"order's profiles", `{"eventType":"ORDER_STATUS","orderNo":"A","status":"GOT_RESOURCE","timestamp":"2024-01-15T12:30:45Z","profiles":[{"iccid":"1"}]}`,
			`{"eventType":"ORDER_STATUS","orderNo":"A","status":"GOT_RESOURCE","timestamp":"2024-01-15T12:30:45Z","profiles":[{"iccid":"1"},{"iccid":"2"}]}`},
	}
	for _, tt := range differ {
		t.Run("differ/"+tt.name, func(t *testing.T) {
			if key(tt.a) == key(tt.b) {
				t.Errorf("same key for different events")
			}
		})
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
	// e:b0effbf00dad3381b136dc420e3da874
}
