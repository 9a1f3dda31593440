package intent_test

import (
	"testing"
	"time"

	"github.com/esimflow/esimflow/shared/event"
	"github.com/esimflow/esimflow/shared/intent"
)

// BenchmarkIntentFor is intent derivation for the two events that ask for one.
func BenchmarkIntentFor(b *testing.B) {
	rules := intent.Rules{LowDataThresholds: []int{50, 80, 100}, ValidityLowDays: intent.DefaultValidityLowDays}
	at := time.Date(2024, 1, 16, 8, 0, 0, 0, time.UTC)
	for name, ev := range map[string]event.Event{
		"activation": {Type: event.ProfileStatus, ICCID: "8901234567890123456", Status: "ACTIVATED"},
		"low-data":   {Type: event.DataUsage, ICCID: "8901234567890123456", UsagePercent: 80, HasUsage: true},
	} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if len(intent.For(ev, at, intent.Landing{Bundles: []intent.BundleLanding{{ID: "b1", Reports: []intent.Usage{{Percent: ev.UsagePercent}}}}}, rules)) != 1 {
					b.Fatal("want one intent")
				}
			}
		})
	}
}
