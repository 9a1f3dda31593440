package event_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/esimflow/esimflow/shared/event"
)

// TestDecodeCausalEvidence (issue 14, case 7 and "A causal order"): a
// timestamp of 0 is no time, not 1970; lastUpdateTime is an event time;
// seqNumber is the provider's sequence.
func TestDecodeCausalEvidence(t *testing.T) {
	t1 := time.Date(2024, 1, 15, 14, 0, 0, 0, time.UTC)
	tests := []struct {
		name  string
		body  string
		at    time.Time
		seq   int64
		timed bool
	}{
		{"timestamp 0 is none", `{"eventType":"PROFILE_STATUS","iccid":"1","currentStatus":"ACTIVATED","timestamp":0}`, time.Time{}, 0, false},
		{"timestamp \"0\" is none", `{"eventType":"PROFILE_STATUS","iccid":"1","currentStatus":"ACTIVATED","timestamp":"0"}`, time.Time{}, 0, false},
		{"lastUpdateTime", `{"eventType":"PROFILE_STATUS","iccid":"1","currentStatus":"ACTIVATED","lastUpdateTime":"2024-01-15T14:00:00Z"}`, t1, 0, true},
		{"timestamp before lastUpdateTime", `{"eventType":"PROFILE_STATUS","iccid":"1","currentStatus":"ACTIVATED","timestamp":"2024-01-15T14:00:00Z","lastUpdateTime":"2024-01-15T15:00:00Z"}`, t1, 0, true},
		{"seqNumber", `{"notifyType":"ESIM_STATUS","content":{"iccid":"1","esimStatus":"IN_USE","seqNumber":42}}`, time.Time{}, 42, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := event.Decode([]byte(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if !ev.Timestamp.Equal(tt.at) || ev.ProviderSeq != tt.seq || ev.Timed() != tt.timed {
				t.Errorf("time %v seq %d timed %v, want %v %d %v", ev.Timestamp, ev.ProviderSeq, ev.Timed(), tt.at, tt.seq, tt.timed)
			}
		})
	}
	if _, err := event.Decode([]byte(`{"eventType":"PROFILE_STATUS","iccid":"1","currentStatus":"ACTIVATED","timestamp":-5}`)); err == nil {
		t.Error("a negative time decoded")
	}
}

// TestDecodeVocabulary (issue 14, case 7): statuses in one canonical
// spelling with the provider's kept; percents outside 0–100 clamped where the
// volumes prove the truth, else malformed with the reason.
func TestDecodeVocabulary(t *testing.T) {
	statuses := []struct{ body, status, raw, prev string }{
		{`{"notifyType":"ESIM_STATUS","content":{"iccid":"1","esimStatus":"in_use"}}`, "IN_USE", "in_use", ""},
		{`{"eventType":"PROFILE_STATUS","iccid":"1","previousStatus":"in-use","currentStatus":"Suspended"}`, "SUSPENDED", "Suspended", "IN_USE"},
		{`{"eventType":"ORDER_STATUS","orderNo":"O","status":"CANCELED"}`, "CANCELLED", "CANCELED", ""},
		{`{"eventType":"PROFILE_STATUS","iccid":"1","currentStatus":"ACTIVATED"}`, "ACTIVATED", "", ""},
	}
	for _, tt := range statuses {
		ev, err := event.Decode([]byte(tt.body))
		if err != nil {
			t.Fatal(err)
		}
		if ev.Status != tt.status || ev.RawStatus != tt.raw || ev.PreviousStatus != tt.prev || !event.KnownStatus(ev.Type, ev.Status) {
			t.Errorf("%s: status %q raw %q previous %q, want %q %q %q", tt.body, ev.Status, ev.RawStatus, ev.PreviousStatus, tt.status, tt.raw, tt.prev)
		}
	}
	percents := []struct {
		name, body string
		pct        float64
		bad        string
	}{
		{"150 with volumes clamped", `{"eventType":"DATA_USAGE","iccid":"1","usedVolume":1500,"totalVolume":1000,"usagePercent":150}`, 100, ""},
		{"1e30 with volumes derived", `{"eventType":"DATA_USAGE","iccid":"1","usedVolume":400,"totalVolume":1000,"usagePercent":1e30}`, 40, ""},
		{"1e30 alone dead-lettered", `{"eventType":"DATA_USAGE","iccid":"1","usagePercent":1e30}`, 0, "outside 0–100"},
		{"150 alone dead-lettered", `{"eventType":"DATA_USAGE","iccid":"1","usagePercent":150}`, 0, "outside 0–100"},
		{"volume beyond the bound", `{"eventType":"DATA_USAGE","iccid":"1","usedVolume":1e18,"totalVolume":1e18}`, 0, "at most"},
		{"over-used volumes", `{"notifyType":"DATA_USAGE","content":{"iccid":"1","totalVolume":1000,"orderUsage":1200}}`, 100, ""},
	}
	for _, tt := range percents {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := event.Decode([]byte(tt.body))
			switch {
			case tt.bad != "":
				if !errors.Is(err, event.ErrMalformed) || !strings.Contains(err.Error(), tt.bad) {
					t.Errorf("err %v, want malformed: %s", err, tt.bad)
				}
			case err != nil:
				t.Fatal(err)
			case ev.UsagePercent != tt.pct:
				t.Errorf("percent %v, want %v", ev.UsagePercent, tt.pct)
			}
		})
	}
}
