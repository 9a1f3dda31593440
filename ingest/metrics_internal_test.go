package ingest

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

// TestArrivals: the last webhook per provider as a timestamp, and the usual
// gap over the last hour; a provider with fewer than 2 webhooks in the hour
// has no usual gap; webhooks older than the hour no longer count.
func TestArrivals(t *testing.T) {
	t0 := time.Date(2026, 11, 1, 8, 0, 0, 0, time.UTC)
	now := t0
	a := newArrivals(func() time.Time { return now })
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(a)
	for i := range 10 { // every 6 minutes from t0
		a.add("esimaccess", t0.Add(time.Duration(i)*6*time.Minute))
	}
	a.add("other", t0.Add(30*time.Minute))
	now = t0.Add(time.Hour)
	want := `
# HELP esimflow_webhook_last_received_timestamp_seconds When ingest last stored a webhook of the provider (Unix seconds); a duplicate counts.
# TYPE esimflow_webhook_last_received_timestamp_seconds gauge
esimflow_webhook_last_received_timestamp_seconds{provider="esimaccess"} 1.79352324e+09
esimflow_webhook_last_received_timestamp_seconds{provider="other"} 1.7935218e+09
# HELP esimflow_webhook_usual_gap_seconds The provider's mean gap between stored webhooks over the last hour (or since ingest started, if later); absent with fewer than 2 webhooks in that time.
# TYPE esimflow_webhook_usual_gap_seconds gauge
esimflow_webhook_usual_gap_seconds{provider="esimaccess"} 400
`
	// 10 webhooks in the hour since the first: a usual gap of 6 min (the
	// first minute's webhook falls out at t0+1h, so 9 in 60 min: 400 s).
	if err := testutil.GatherAndCompare(reg, strings.NewReader(want)); err != nil {
		t.Error(err)
	}
	now = t0.Add(3 * time.Hour)
	if n, err := testutil.GatherAndCount(reg, "esimflow_webhook_usual_gap_seconds"); err != nil || n != 0 {
		t.Errorf("an hour after the last webhook: %d usual gaps (%v), want none", n, err)
	}
}
