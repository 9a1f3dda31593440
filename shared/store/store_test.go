package store_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/esimflow/esimflow/shared/store"
)

// TestProfileOldStateLoads: a profile stored before periods named their
// subscription (each period its end alone) still loads, its periods live.
func TestProfileOldStateLoads(t *testing.T) {
	old := `{"iccid":"89","usedVolume":0,"totalVolume":0,"usagePercent":0,"periods":["2024-03-15T12:00:00Z","2024-02-14T12:00:00Z"]}`
	var p store.Profile
	if err := json.Unmarshal([]byte(old), &p); err != nil {
		t.Fatal(err)
	}
	want := []store.Period{{ExpiresAt: time.Date(2024, 3, 15, 12, 0, 0, 0, time.UTC), Live: true}, {ExpiresAt: time.Date(2024, 2, 14, 12, 0, 0, 0, time.UTC), Live: true}}
	if len(p.Periods) != 2 || p.Periods[0] != want[0] || p.Periods[1] != want[1] {
		t.Errorf("periods %+v, want %+v", p.Periods, want)
	}
	b, err := json.Marshal(p)
	if err != nil {
		t.Fatal(err)
	}
	var again store.Profile
	if err := json.Unmarshal(b, &again); err != nil || len(again.Periods) != 2 || again.Periods[0] != want[0] {
		t.Errorf("round trip: %+v, %v", again.Periods, err)
	}
}
