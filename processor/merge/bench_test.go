package merge_test

import (
	"testing"
	"time"

	"github.com/esimflow/esimflow/processor/merge"
	"github.com/esimflow/esimflow/shared/event"
	"github.com/esimflow/esimflow/shared/store"
)

// BenchmarkMerge is the pure merge of one event into state that already has
// a history, as the processor does for every event (the store round trip
// around it is measured by the processor's throughput benchmark).
func BenchmarkMerge(b *testing.B) {
	at := time.Date(2024, 1, 16, 8, 0, 0, 0, time.UTC)
	b.Run("profile-status", func(b *testing.B) {
		ev := event.Event{Type: event.ProfileStatus, ICCID: "8901234567890123456", OrderNo: "B1", Status: "ACTIVATED", PreviousStatus: "RELEASED"}
		b.ReportAllocs()
		for b.Loop() {
			p := store.Profile{ICCID: ev.ICCID, History: []store.Transition{{Status: "RELEASED", At: at.Add(-time.Hour)}}}
			merge.Profile(&p, ev, at)
		}
	})
	b.Run("data-usage", func(b *testing.B) {
		ev := event.Event{Type: event.DataUsage, ICCID: "8901234567890123456", UsedVolume: 859832320, TotalVolume: 1073741824, UsagePercent: 80, HasUsage: true}
		b.ReportAllocs()
		for b.Loop() {
			p := store.Profile{ICCID: ev.ICCID, Status: "ACTIVATED", UsedVolume: 1 << 29, TotalVolume: 1 << 30, UsagePercent: 50}
			merge.Profile(&p, ev, at)
		}
	})
	b.Run("order-status", func(b *testing.B) {
		ev := event.Event{Type: event.OrderStatus, OrderNo: "B23110718759768", Status: "GOT_RESOURCE",
			Profiles: []event.ProfileRef{{ICCID: "8901234567890123456"}, {ICCID: "8901234567890123457"}}}
		b.ReportAllocs()
		for b.Loop() {
			o := store.Order{OrderNo: ev.OrderNo}
			merge.Order(&o, ev, at)
		}
	})
}
