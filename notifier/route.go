package notifier

import (
	"errors"
	"fmt"
	"slices"

	"github.com/esimflow/esimflow/notifier/channel"
	"github.com/esimflow/esimflow/shared/store"
)

// errNoContact: the configured channels need a contact and there is none yet.
var errNoContact = errors.New("no contact")

// defaultOrder is the channel order when the configuration names none.
var defaultOrder = []string{channel.EmailName, channel.SMSName, channel.WhatsAppName, channel.WebhookName, channel.ConsoleName}

// route picks the channels a message is tried on, in order: it goes out on
// the first that takes it (fallback.go).
//
// A contact's own list wins, in its order, keeping the channels that are
// configured and that it has an address for. Otherwise order (the
// configured ESIMFLOW_NOTIFY_CHANNELS), keeping the same. Email, SMS and
// WhatsApp need a contact: when one of them is configured and there is no
// contact, route answers errNoContact and the message waits for the checkout
// to register it; the webhook and the console send without one.
func route(c *store.Contact, configured map[string]Channel, order []string) ([]Channel, error) {
	usable := func(name string) bool {
		if configured[name] == nil {
			return false
		}
		switch name {
		case channel.EmailName:
			return c != nil && c.Email != ""
		case channel.SMSName, channel.WhatsAppName:
			return c != nil && c.Phone != ""
		}
		return true
	}
	pick := func(names []string) []Channel {
		var out []Channel
		for _, name := range names {
			if usable(name) {
				out = append(out, configured[name])
			}
		}
		return out
	}
	if c != nil && len(c.Channels) > 0 {
		if out := pick(c.Channels); len(out) > 0 {
			return out, nil
		}
		return nil, fmt.Errorf("contact %s asks for %v, and none is configured here with an address for it", c.TransactionID, c.Channels)
	}
	if c == nil && (configured[channel.EmailName] != nil || configured[channel.SMSName] != nil || configured[channel.WhatsAppName] != nil) {
		return nil, errNoContact
	}
	if len(order) == 0 {
		order = defaultOrder
	}
	if out := pick(order); len(out) > 0 {
		return out, nil
	}
	tx := ""
	if c != nil {
		tx = c.TransactionID
	}
	return nil, fmt.Errorf("contact %s has no address for the configured channels %v", tx, names(configured))
}

func names(configured map[string]Channel) []string {
	var out []string
	for _, n := range channel.Names {
		if configured[n] != nil {
			out = append(out, n)
		}
	}
	return slices.Clip(out)
}
