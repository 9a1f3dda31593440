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

// routingOrder is the default preference among configured channels.
var routingOrder = []string{channel.EmailName, channel.SMSName, channel.WebhookName, channel.ConsoleName}

// route picks the channels a message goes out on.
//
// A contact's own list wins, in its order, keeping the channels that are
// configured and that it has an address for. Otherwise one channel: email
// when configured and the contact has an address, else SMS likewise, else
// the webhook, else the console. Email and SMS need a contact: when one of
// them is configured and there is no contact, route answers errNoContact and
// the message waits for the checkout to register it; the webhook and the
// console send without one.
func route(c *store.Contact, configured map[string]Channel) ([]Channel, error) {
	usable := func(name string) bool {
		if configured[name] == nil {
			return false
		}
		switch name {
		case channel.EmailName:
			return c != nil && c.Email != ""
		case channel.SMSName:
			return c != nil && c.Phone != ""
		}
		return true
	}
	if c != nil && len(c.Channels) > 0 {
		var out []Channel
		for _, name := range c.Channels {
			if usable(name) {
				out = append(out, configured[name])
			}
		}
		if len(out) == 0 {
			return nil, fmt.Errorf("contact %s asks for %v, and none is configured here with an address for it", c.TransactionID, c.Channels)
		}
		return out, nil
	}
	if c == nil && (configured[channel.EmailName] != nil || configured[channel.SMSName] != nil) {
		return nil, errNoContact
	}
	for _, name := range routingOrder {
		if usable(name) {
			return []Channel{configured[name]}, nil
		}
	}
	return nil, fmt.Errorf("contact %s has no address for the configured channels %v", c.TransactionID, names(configured))
}

func names(configured map[string]Channel) []string {
	var out []string
	for _, n := range routingOrder {
		if configured[n] != nil {
			out = append(out, n)
		}
	}
	return slices.Clip(out)
}
