package intent_test

import (
	"testing"
	"time"

	"github.com/esimflow/esimflow/shared/event"
	"github.com/esimflow/esimflow/shared/intent"
)

// TestSecurityUnknownStatusNeverDrivesMessages: a status outside the
// documented sets is kept in state (it is what the provider said) but asks
// for no customer message; only the activated statuses, all known, do.
func TestSecurityUnknownStatusNeverDrivesMessages(t *testing.T) {
	for _, s := range intent.ActivatedStatuses {
		if !event.KnownStatus(event.ProfileStatus, s) {
			t.Errorf("activated status %s is not a known status", s)
		}
	}
	for _, s := range []string{"ACTIVATED_MAYBE", "activated", "IN_USE ", "PWNED"} {
		ev := event.Event{Type: event.ProfileStatus, ICCID: "8901", Status: s}
		if event.KnownStatus(ev.Type, s) {
			t.Errorf("%q is a known status", s)
		}
		if in := intent.For(ev, time.Now(), intent.Landing{}, intent.Rules{LowDataThresholds: []int{80, 100}}); len(in) != 0 {
			t.Errorf("unknown status %q asked for %v", s, in)
		}
	}
}
