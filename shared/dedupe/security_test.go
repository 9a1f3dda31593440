package dedupe_test

import (
	"strings"
	"testing"

	"github.com/esimflow/esimflow/shared/dedupe"
	"github.com/esimflow/esimflow/shared/event"
)

// TestSecurityLongNotifyIDIsHashedIntoBoundedKey: a provider id becomes the
// Nats-Msg-Id JetStream holds for its duplicate window; a long one (or one
// with bytes a header must not carry) is hashed, so every key is short and
// printable, and two ids still give two keys.
func TestSecurityLongNotifyIDIsHashedIntoBoundedKey(t *testing.T) {
	ev := event.Event{Type: event.EsimStatus, Format: event.FormatNotifyType, ICCID: "1", Status: "IN_USE"}
	for _, id := range []string{strings.Repeat("a", 60_000), strings.Repeat("a", 70_000), strings.Repeat("b", 65), "id\r\nNats-Msg-Id: x", "id with space"} {
		ev.NotifyID = id
		k := dedupe.Key(ev, nil, nil)
		if len(k) > dedupe.MaxKeyLen {
			t.Errorf("id of %d bytes: key of %d bytes", len(id), len(k))
		}
		for _, c := range []byte(k) {
			if c <= ' ' || c > '~' {
				t.Errorf("id %.20q: key %q carries byte %#x", id, k, c)
				break
			}
		}
	}
	ev.NotifyID = strings.Repeat("a", 100)
	a := dedupe.Key(ev, nil, nil)
	ev.NotifyID = strings.Repeat("a", 99) + "b"
	if b := dedupe.Key(ev, nil, nil); a == b {
		t.Error("two long ids share a key")
	}
	ev.NotifyID = "n-123" // a short printable id stays readable
	if k := dedupe.Key(ev, nil, nil); k != "n:n-123" {
		t.Errorf("short id: key %q", k)
	}
}
