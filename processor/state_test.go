package processor_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/esimflow/esimflow/shared/poll"
	"github.com/esimflow/esimflow/shared/store"
)

// TestStateAPI: an order answers with its profiles' current state; a profile
// with its status history (?history=N for the last N), usage and validity,
// from both provider formats; unknown ids get a 404 JSON error.
func TestStateAPI(t *testing.T) {
	r := newRig(t, rigOpts{})
	in := r.start(t, r.kvStore(t), instOpts{})
	for _, body := range []string{
		`{"eventType":"ORDER_STATUS","orderNo":"B1","transactionId":"tx1","status":"GOT_RESOURCE","timestamp":"2024-01-15T12:00:00Z",
		  "profiles":[{"iccid":"8910","esimTranNo":"EA","status":"GOT_RESOURCE"},{"iccid":"8911","status":"GOT_RESOURCE"}]}`,
		`{"notifyType":"ESIM_STATUS","eventGenerateTime":"2024-01-15T13:00:00Z","content":{"orderNo":"B1","iccid":"8910","esimStatus":"IN_USE","smdpStatus":"ENABLED"}}`,
		`{"notifyType":"DATA_USAGE","eventGenerateTime":"2024-01-16T13:00:00Z","content":{"orderNo":"B1","iccid":"8910","totalVolume":1000,"orderUsage":800,"remain":200}}`,
		`{"notifyType":"DATA_USAGE","eventGenerateTime":"2024-01-16T14:00:00Z","content":{"orderNo":"B1","iccid":"8911","totalVolume":1000,"remain":100}}`,
		`{"notifyType":"VALIDITY_USAGE","eventGenerateTime":"2024-01-17T00:00:00Z","content":{"orderNo":"B1","iccid":"8910","durationUnit":"DAY","totalDuration":30,"expiredTime":"2024-02-14T12:00:00Z","remain":3}}`,
		`{"eventType":"PROFILE_STATUS","iccid":"8910","previousStatus":"IN_USE","currentStatus":"SUSPENDED","timestamp":"2024-01-18T00:00:00Z"}`,
	} {
		r.publish(t, body, true)
	}
	poll.Until(t, "all applied", func() bool { return r.quiet(t) })

	var o struct {
		store.Order
		ProfileStates []store.Profile `json:"profileStates"`
	}
	if code := in.call(t, "GET", "/v1/orders/B1", &o); code != 200 {
		t.Fatalf("order: %d", code)
	}
	if o.TransactionID != "tx1" || len(o.Profiles) != 2 || len(o.ProfileStates) != 2 {
		t.Fatalf("order %+v", o)
	}
	a, b := o.ProfileStates[0], o.ProfileStates[1]
	if a.ICCID != "8910" || a.Status != "SUSPENDED" || a.UsagePercent != 80 || a.Validity == nil || a.Validity.Remain != 3 || a.History != nil {
		t.Errorf("profile A in the order %+v", a)
	}
	if b.ICCID != "8911" || b.Status != "GOT_RESOURCE" || b.UsedVolume != 900 || b.UsagePercent != 90 {
		t.Errorf("profile B in the order %+v", b)
	}

	var p store.Profile
	if code := in.call(t, "GET", "/v1/profiles/8910", &p); code != 200 {
		t.Fatalf("profile: %d", code)
	}
	want := []string{"SUSPENDED", "IN_USE", "GOT_RESOURCE"}
	if len(p.History) != len(want) {
		t.Fatalf("history %+v", p.History)
	}
	for i, tr := range p.History {
		if tr.Status != want[i] || tr.At.IsZero() {
			t.Errorf("history[%d] = %+v, want %s", i, tr, want[i])
		}
	}
	if p.SmdpStatus != "ENABLED" || p.PreviousStatus != "IN_USE" || p.EsimTranNo != "EA" ||
		!p.Validity.ExpiresAt.Equal(time.Date(2024, 2, 14, 12, 0, 0, 0, time.UTC)) || p.Validity.Unit != "DAY" {
		t.Errorf("profile %+v validity %+v", p, p.Validity)
	}
	var last store.Profile
	if in.call(t, "GET", "/v1/profiles/8910?history=1", &last); len(last.History) != 1 || last.History[0].Status != "SUSPENDED" {
		t.Errorf("?history=1: %+v", last.History)
	}

	for _, path := range []string{"/v1/orders/nope", "/v1/profiles/nope"} {
		w := in.raw("GET", path)
		if w.Code != http.StatusNotFound || w.Header().Get("Content-Type") != "application/json" || !strings.Contains(w.Body.String(), `"error":`) {
			t.Errorf("%s: %d %s, want a 404 JSON error", path, w.Code, w.Body)
		}
	}
	if code := in.call(t, "GET", "/v1/profiles/8910?history=x", nil); code != http.StatusBadRequest {
		t.Errorf("bad history: %d", code)
	}
}
