package intent

import (
	stdjson "encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"
)

func sampleIntents() []Intent {
	at := time.Date(2024, 1, 15, 12, 30, 45, 123456789, time.UTC)
	return []Intent{
		{ID: ActivationID("8901"), Kind: Activation, ICCID: "8901", OrderNo: "O1", TransactionID: "tx", Subscription: "8901", EventAt: at},
		{ID: LowDataID("8901", "b1", 80), Kind: LowData, ICCID: "8901", Threshold: 80, UsagePercent: 80.5, UsedVolume: 859832320,
			TotalVolume: 1073741824, Subscription: "8901", Bundle: "b1", SupersededBy: []string{LowDataID("8901", "b1", 100)},
			After: []string{LowDataID("8901", "b1", 50)}, EventAt: at},
		{ID: "validity_low:8901:p:1", Kind: ValidityLow, ICCID: "8901", RemainDays: 1, ExpiresAt: at.Add(24 * time.Hour), EventAt: at},
	}
}

// TestDecodeReadsWhatIsPublished: Decode gives back every intent the
// processor publishes (encoding/json) as it was, and refuses what cannot
// be claimed.
func TestDecodeReadsWhatIsPublished(t *testing.T) {
	for _, want := range sampleIntents() {
		b, err := stdjson.Marshal(want)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Decode(b)
		if err != nil {
			t.Fatalf("Decode(%s): %v", b, err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("Decode(%s) = %+v; want %+v", b, got, want)
		}
	}
	for _, bad := range []string{`not json`, `{"id":"x"}`, `{"iccid":"8901"}`, `[]`, ``} {
		if _, err := Decode([]byte(bad)); err == nil || !strings.Contains(err.Error(), "undecodable intent") {
			t.Errorf("Decode(%q) = %v; want an undecodable intent", bad, err)
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	in := sampleIntents()[1]
	data, err := stdjson.Marshal(in)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("segmentio", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := Decode(data); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var out Intent
			if err := stdjson.Unmarshal(data, &out); err != nil {
				b.Fatal(err)
			}
		}
	})
}
