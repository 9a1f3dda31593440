package event_test

import (
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
