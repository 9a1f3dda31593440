package provider_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/esimflow/esimflow/shared/event"
)

// FuzzAdapters feeds every adapter arbitrary bodies, seeded with the
// provider samples: never a panic, always at least one event, and an event
// without an error has passed the checks (so it carries its provider).
func FuzzAdapters(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join(fixtures, "*.json"))
	for _, file := range files {
		body, err := os.ReadFile(file)
		if err == nil {
			f.Add(body)
		}
	}
	f.Add([]byte(`{"level":"1e400%","iccid":"1","remaining_percentage":-5}`))
	f.Add([]byte(`{"alertType":"Utilisation","iccid":"1","bundle":{"initialQuantity":"NaN","remainingQuantity":1e308}}`))
	f.Add([]byte(`{"Type":"Notification","Message":"{\"eventName\":\"PACKAGE_DATA_USAGE_ALERT\",\"timestamp\":-1}"}`))
	reg := registry(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, name := range reg.Names() {
			a, _ := reg.Get(name)
			got := a.Decode(dc, body)
			if len(got) == 0 {
				t.Fatalf("%s: no event for %q", name, body)
			}
			for _, d := range got {
				if d.Err == nil && d.Event.Type != event.Unknown && d.Event.Type != event.CheckHealth && name != "esimaccess" && d.Event.Provider != name {
					t.Fatalf("%s: event without its provider: %+v", name, d.Event)
				}
				if d.Err != nil && !errors.Is(d.Err, event.ErrMalformed) && !errors.Is(d.Err, event.ErrInvalidJSON) {
					t.Fatalf("%s: error %v is neither malformed nor invalid JSON", name, d.Err)
				}
			}
		}
	})
}
