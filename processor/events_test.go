package processor_test

import (
	"strings"
	"testing"

	"github.com/esimflow/esimflow/processor"
)

// TestEventAPI: GET /v1/events/{seq} answers the stored bytes of
// ESIM_EVENTS at that sequence, 404 past the end, 400 for a bad sequence.
func TestEventAPI(t *testing.T) {
	r := newRig(t, rigOpts{maxDeliver: 3})
	in := r.start(t, r.kvStore(t), instOpts{})
	r.publish(t, `{"eventType":"PROFILE_STATUS","iccid":"8931","currentStatus":"ACTIVATED","timestamp":"2024-01-15T14:00:00Z"}`, true)
	var ev processor.StoredEvent
	if code := in.call(t, "GET", "/v1/events/1", &ev); code != 200 || ev.Seq != 1 || !strings.Contains(string(ev.Body), `"iccid":"8931"`) || ev.ReceivedAt.IsZero() {
		t.Fatalf("event 1: %d %+v", code, ev)
	}
	if code := in.call(t, "GET", "/v1/events/99", nil); code != 404 {
		t.Errorf("past the end: %d, want 404", code)
	}
	if code := in.call(t, "GET", "/v1/events/x", nil); code != 400 {
		t.Errorf("bad sequence: %d, want 400", code)
	}
}
