package event

import "strings"

// Canonical statuses (issue 14, case 7): providers spell one status several
// ways ("in_use", "In-Use", "CANCELED"); each is read as one canonical value,
// and the value the provider sent is kept beside it (Event.RawStatus) when
// it differs.
//
// A status outside the known sets is kept as the provider sent it, in its
// canonical spelling, and drives no message.

// statusAliases maps spellings to the canonical status.
var statusAliases = map[string]string{
	"CANCEL":   "CANCELLED",
	"CANCELED": "CANCELLED",
	"REVOKE":   "REVOKED",
	"INUSE":    "IN_USE",
	"USEDUP":   "USED_UP",
	"DOWNLOAD": "DOWNLOADED",
	"INSTALL":  "INSTALLED",
	"ACTIVE":   "ACTIVATED",
	"SUSPEND":  "SUSPENDED",
}

// CanonicalStatus is a status's canonical spelling: upper case, words joined
// by "_", aliases resolved.
func CanonicalStatus(raw string) string {
	s := strings.ToUpper(strings.TrimSpace(raw))
	s = strings.Map(func(r rune) rune {
		if r == '-' || r == ' ' {
			return '_'
		}
		return r
	}, s)
	if c, ok := statusAliases[s]; ok {
		return c
	}
	return s
}

// TerminalStatuses end a subscription: once its current status is one of
// these, no activation, usage or validity message goes to its customer (a
// late ACTIVATED after RELEASED must not say "your eSIM is active"). A new
// subscription of the same ICCID starts over.
//
// RELEASED is in the set because the providers use it for an eSIM
// given back; where a provider uses it for "released for download" before
// activation, the activation still comes later and is current, so it
// still notifies.
var TerminalStatuses = []string{"CANCELLED", "REVOKED", "RELEASED", "DELETED", "EXPIRED", "USED_EXPIRED", "UNUSED_EXPIRED", "REFUNDED"}

// Terminal reports whether a canonical status ends a subscription.
func Terminal(status string) bool {
	for _, s := range TerminalStatuses {
		if s == status {
			return true
		}
	}
	return false
}

// canonicalStatuses rewrites the event's statuses in their canonical
// spelling, keeping the provider's new status when it differs.
func (ev *Event) canonicalStatuses() {
	if c := CanonicalStatus(ev.Status); c != ev.Status {
		ev.RawStatus, ev.Status = ev.Status, c
	}
	ev.PreviousStatus = CanonicalStatus(ev.PreviousStatus)
	ev.SmdpStatus = CanonicalStatus(ev.SmdpStatus)
	for i := range ev.Profiles {
		ev.Profiles[i].Status = CanonicalStatus(ev.Profiles[i].Status)
	}
}
