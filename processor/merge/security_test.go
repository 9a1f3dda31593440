package merge_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/esimflow/esimflow/processor/merge"
	"github.com/esimflow/esimflow/shared/event"
	"github.com/esimflow/esimflow/shared/store"
)

// TestSecurityForgedProfilesCannotGrowOrderWithoutBound (issue 13 item 4):
// every profile event naming an order adds its ICCID to the order; forged
// ones must not grow it without bound. The order keeps the MaxOrderProfiles
// smallest ICCIDs, the same set whatever the arrival order.
func TestSecurityForgedProfilesCannotGrowOrderWithoutBound(t *testing.T) {
	at := time.Date(2024, 1, 15, 14, 0, 0, 0, time.UTC)
	var evs []event.Event
	for i := range 3 * merge.MaxOrderProfiles {
		evs = append(evs, event.Event{Type: event.ProfileStatus, OrderNo: "O1", ICCID: fmt.Sprintf("8901%06d", (i*7919)%1000), Status: "IN_USE"})
	}
	var forward, backward store.Order
	for _, ev := range evs {
		merge.Order(&forward, ev, at)
	}
	for _, ev := range slices.Backward(evs) {
		merge.Order(&backward, ev, at)
	}
	if len(forward.Profiles) != merge.MaxOrderProfiles {
		t.Fatalf("order lists %d profiles, want the cap %d", len(forward.Profiles), merge.MaxOrderProfiles)
	}
	if !slices.Equal(forward.Profiles, backward.Profiles) {
		t.Error("the kept profiles depend on the arrival order")
	}
}

// TestSecurityStateByteCapTrimsHistoryFirst: whatever the events carry (here
// statuses far over the decoder's bounds, as an event stored before them
// would), a profile's or order's stored JSON stays under MaxStateBytes: its
// oldest history goes first, and the current status is still the newest.
func TestSecurityStateByteCapTrimsHistoryFirst(t *testing.T) {
	base := time.Date(2024, 1, 15, 14, 0, 0, 0, time.UTC)
	var p store.Profile
	var o store.Order
	for i := range merge.HistoryLimit {
		status := fmt.Sprintf("S%02d", i) + strings.Repeat("x", 2<<10)
		ev := event.Event{Type: event.ProfileStatus, OrderNo: "O1", ICCID: "8901", Status: status, PreviousStatus: strings.Repeat("p", 2<<10)}
		merge.Profile(&p, ev, base.Add(time.Duration(i)*time.Minute))
		merge.Order(&o, event.Event{Type: event.OrderStatus, OrderNo: "O1", Status: status}, base.Add(time.Duration(i)*time.Minute))
	}
	for name, v := range map[string]any{"profile": p, "order": o} {
		b, _ := json.Marshal(v)
		if len(b) > merge.MaxStateBytes {
			t.Errorf("%s state is %d bytes, over the cap %d", name, len(b), merge.MaxStateBytes)
		}
	}
	if !strings.HasPrefix(p.Status, fmt.Sprintf("S%02d", merge.HistoryLimit-1)) || len(p.History) == 0 {
		t.Errorf("profile status %.8q…, history %d: want the newest kept", p.Status, len(p.History))
	}
}
