package notifier

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/esimflow/esimflow/notifier/channel"
	"github.com/esimflow/esimflow/shared/store"
	"github.com/nats-io/nats.go/jetstream"
)

type named string

func (n named) Name() string                                { return string(n) }
func (n named) Send(context.Context, channel.Message) error { return nil }

func configured(names ...string) map[string]Channel {
	out := map[string]Channel{}
	for _, n := range names {
		out[n] = named(n)
	}
	return out
}

func TestRoute(t *testing.T) {
	full := &store.Contact{TransactionID: "tx", Email: "a@example.com", Phone: "+351912345678"}
	emailOnly := &store.Contact{TransactionID: "tx", Email: "a@example.com"}
	phoneOnly := &store.Contact{TransactionID: "tx", Phone: "+351912345678"}
	tests := []struct {
		name       string
		contact    *store.Contact
		configured []string
		order      []string // nil: the default
		want       []string
		err        string // "" none; "no contact" errNoContact; else a substring
	}{
		{"email first, then the others to fall back on", full, []string{"email", "sms", "webhook"}, nil, []string{"email", "sms", "webhook"}, ""},
		{"sms when email is not configured", full, []string{"sms", "webhook"}, nil, []string{"sms", "webhook"}, ""},
		{"sms when the contact has no email", phoneOnly, []string{"email", "sms"}, nil, []string{"sms"}, ""},
		{"whatsapp needs a phone", emailOnly, []string{"email", "whatsapp"}, nil, []string{"email"}, ""},
		{"the configured order", full, []string{"email", "sms", "whatsapp"}, []string{"whatsapp", "sms", "email"}, []string{"whatsapp", "sms", "email"}, ""},
		{"the configured order leaves out what it does not name", full, []string{"email", "sms", "whatsapp"}, []string{"whatsapp", "email"}, []string{"whatsapp", "email"}, ""},
		{"webhook when the contact has neither address configured", emailOnly, []string{"sms", "webhook"}, nil, []string{"webhook"}, ""},
		{"console last", full, []string{"console"}, nil, []string{"console"}, ""},
		{"no contact, console needs none", nil, []string{"console"}, nil, []string{"console"}, ""},
		{"no contact, webhook needs none", nil, []string{"webhook"}, nil, []string{"webhook"}, ""},
		{"no contact, email waits for one", nil, []string{"email", "webhook"}, nil, nil, "no contact"},
		{"no contact, sms waits for one", nil, []string{"sms"}, nil, nil, "no contact"},
		{"no contact, whatsapp waits for one", nil, []string{"whatsapp"}, nil, nil, "no contact"},
		{"no address for what is configured", emailOnly, []string{"sms"}, nil, nil, "no address"},
		{"the contact's list, in its order", &store.Contact{TransactionID: "tx", Email: "a@example.com", Phone: "+351912345678", Channels: []string{"whatsapp", "sms", "email", "webhook"}},
			[]string{"email", "sms", "webhook", "whatsapp"}, nil, []string{"whatsapp", "sms", "email", "webhook"}, ""},
		{"the contact's list skips what is not configured", &store.Contact{TransactionID: "tx", Email: "a@example.com", Channels: []string{"sms", "email"}},
			[]string{"email"}, nil, []string{"email"}, ""},
		{"the contact's list, nothing usable", &store.Contact{TransactionID: "tx", Channels: []string{"webhook"}},
			[]string{"email"}, nil, nil, "asks for [webhook]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := route(tt.contact, configured(tt.configured...), tt.order)
			var names []string
			for _, c := range got {
				names = append(names, c.Name())
			}
			switch {
			case tt.err == "no contact":
				if !errors.Is(err, errNoContact) {
					t.Errorf("= %v, %v; want errNoContact", names, err)
				}
			case tt.err != "":
				if err == nil || errors.Is(err, errNoContact) || !strings.Contains(err.Error(), tt.err) {
					t.Errorf("= %v, %v; want an error naming %q", names, err, tt.err)
				}
			case err != nil || !slices.Equal(names, tt.want):
				t.Errorf("= %v, %v; want %v", names, err, tt.want)
			}
		})
	}
}

// TestContactWaitDelay: the waits start within a second and grow, are never
// shorter than the deliveries left need to cover the window, and never
// overshoot it.
func TestContactWaitDelay(t *testing.T) {
	h := &Handler{contactWait: 10 * time.Minute, maxDeliver: 10}
	tests := []struct {
		name      string
		age       time.Duration
		delivered uint64
		min, max  time.Duration
	}{
		{"first retry within a second", 0, 1, 500 * time.Millisecond, 500 * time.Millisecond},
		{"growing by three", time.Minute, 3, 4500 * time.Millisecond, 4500 * time.Millisecond},
		{"never past the window", 9*time.Minute + 59*time.Second, 8, 0, time.Second},
		{"window over", 10 * time.Minute, 2, 0, 0},
		{"no deliveries left", time.Minute, 10, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := h.contactWaitDelay(&jetstream.MsgMetadata{Timestamp: time.Now().Add(-tt.age), NumDelivered: tt.delivered})
			if got < tt.min-10*time.Millisecond || got > tt.max {
				t.Errorf("= %v, want between %v and %v", got, tt.min, tt.max)
			}
		})
	}
	// Whatever the deliveries, the last one comes once the window is over,
	// so it can dead-letter the intent with the reason.
	for _, maxDeliver := range []int{2, 3, 5, 10, 20} {
		window, elapsed := 15*time.Minute, time.Duration(0)
		for n := 1; n < maxDeliver; n++ {
			elapsed += contactWaitDelay(window-elapsed, uint64(n), maxDeliver)
		}
		if elapsed < window-time.Second {
			t.Errorf("max deliver %d: the last delivery comes after %v, inside the %v window", maxDeliver, elapsed, window)
		}
	}
}
