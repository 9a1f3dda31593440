package console_test

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
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

// TestHealthProviders: the last webhook per provider, with a provider
// silent for longer than 3 × its usual gap flagged, one within it not, and
// one with no usual gap flagged only after an hour.
func TestHealthProviders(t *testing.T) {
	r := newRig(t, token, 4)
	now := t0.Add(3 * time.Hour) // the rig's clock
	last := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "esimflow_webhook_last_received_timestamp_seconds", Help: "h"}, []string{"provider"})
	gap := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "esimflow_webhook_usual_gap_seconds", Help: "h"}, []string{"provider"})
	r.adm.Registerer().MustRegister(last, gap)
	for name, silent := range map[string]time.Duration{"busy": 20 * time.Minute, "steady": 20 * time.Minute, "rare": 50 * time.Minute} {
		last.WithLabelValues(name).Set(float64(now.Add(-silent).Unix()))
	}
	gap.WithLabelValues("busy").Set(60)    // every minute: flagged after 10 min (the floor)
	gap.WithLabelValues("steady").Set(600) // every 10 min: flagged after 30 min
	page := r.get(t, "/console/health", token)
	for _, want := range []string{
		`<th scope="row">busy</th><td><time datetime="2026-11-01T10:40:00Z" title="2026-11-01 10:40:00 UTC">20 min ago</time></td><td>1 min</td><td>10 min</td>
<td><span class="bad">silent for longer than usual</span>`,
		`<th scope="row">rare</th><td><time datetime="2026-11-01T10:10:00Z" title="2026-11-01 10:10:00 UTC">50 min ago</time></td><td>not known</td><td>1 h</td>
<td><span class="ok">receiving</span>`,
		`<th scope="row">steady</th><td><time datetime="2026-11-01T10:40:00Z" title="2026-11-01 10:40:00 UTC">20 min ago</time></td><td>10 min</td><td>30 min</td>
<td><span class="ok">receiving</span>`,
		"longer than 3 × its usual gap",
	} {
		if !strings.Contains(page, want) {
			t.Errorf("missing %q", want)
		}
	}
	if t.Failed() {
		t.Log(page)
	}
}
