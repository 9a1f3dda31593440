package console_test

import (
	"strings"
	"testing"
)

// TestHealthRates: the health page turns the counters of two loads into
// rates per minute and draws them.
func TestHealthRates(t *testing.T) {
	r := newRig(t, token, 4)
	first := r.get(t, "/console/health", token)
	if !strings.Contains(first, "webhooks received / min") || !strings.Contains(first, "events processed / min") {
		t.Fatalf("health page:\n%s", first)
	}
	if !strings.Contains(first, `aria-label="processor: now 4, highest 4"`) {
		t.Errorf("the processor's backlog (3 pending + 1 ack pending) is not charted:\n%s", first)
	}
}
