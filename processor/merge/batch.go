package merge

import (
	"time"

	"github.com/esimflow/esimflow/shared/event"
	"github.com/esimflow/esimflow/shared/store"
)

// Timed is an event with the time it takes effect at.
type Timed struct {
	Event event.Event
	At    time.Time
}

// Touches lists the orders and profiles the events name. An order's stored
// profiles are touched too; Fold reports those it lacks.
func Touches(evs []Timed) (orderNos, iccids []string) {
	seenO, seenP := map[string]bool{}, map[string]bool{}
	addO := func(no string) {
		if no != "" && !seenO[no] {
			seenO[no] = true
			orderNos = append(orderNos, no)
		}
	}
	addP := func(iccid string) {
		if iccid != "" && !seenP[iccid] {
			seenP[iccid] = true
			iccids = append(iccids, iccid)
		}
	}
	for _, t := range evs {
		switch t.Event.Type {
		case event.OrderStatus:
			addO(t.Event.OrderNo)
			for _, ref := range t.Event.Profiles {
				addP(ref.ICCID)
			}
		case event.ProfileStatus, event.EsimStatus, event.SmdpEvent, event.DataUsage, event.ValidityUsage:
			addO(t.Event.OrderNo)
			addP(t.Event.ICCID)
		}
	}
	return orderNos, iccids
}

// Changed names the orders and profiles a Fold changed.
type Changed struct {
	Orders, Profiles map[string]bool
}

// Missing names what a Fold needed and the snapshot lacked.
type Missing struct {
	Orders, Profiles []string
}

// Empty reports whether nothing is missing.
func (m Missing) Empty() bool { return len(m.Orders) == 0 && len(m.Profiles) == 0 }

// Fold merges a batch of events into snap the way Apply merges them one by
// one: every event's order first, then the profiles, each linked to its
// order. The result is the state Apply gives for the same events in any
// order, since merges are order-independent and idempotent; the same
// property makes a second Fold of the same events harmless, which is how a
// caller completes one that reported missing entities: read them, fold again.
// It adds what it changed to changed.
func Fold(snap *store.Snapshot, evs []Timed, changed *Changed) Missing {
	if changed.Orders == nil {
		changed.Orders = map[string]bool{}
	}
	if changed.Profiles == nil {
		changed.Profiles = map[string]bool{}
	}
	var missing Missing
	for _, t := range evs {
		ev := t.Event
		if !merged(ev.Type) || ev.OrderNo == "" {
			continue
		}
		o, ok := snap.Orders[ev.OrderNo]
		if !ok {
			missing.Orders = append(missing.Orders, ev.OrderNo)
			continue
		}
		if Order(&o.Value, ev, t.At) {
			changed.Orders[ev.OrderNo] = true
		}
	}
	profile := func(iccid string, fn func(*store.Profile) bool) {
		p, ok := snap.Profiles[iccid]
		if !ok {
			missing.Profiles = append(missing.Profiles, iccid)
			return
		}
		if fn(&p.Value) {
			changed.Profiles[iccid] = true
		}
	}
	for _, t := range evs {
		ev := t.Event
		var o store.Order
		if v, ok := snap.Orders[ev.OrderNo]; ok {
			o = v.Value
		}
		switch {
		case ev.Type == event.OrderStatus:
			for _, iccid := range o.Profiles {
				profile(iccid, func(p *store.Profile) bool { return ProfileInOrder(p, ev, o, t.At) })
			}
		case merged(ev.Type):
			profile(ev.ICCID, func(p *store.Profile) bool {
				changed := Profile(p, ev, t.At)
				return Link(p, o.OrderNo, o.TransactionID, "", t.At) || changed
			})
		}
	}
	return missing
}

// Entities names what an event's merge wrote or would write in snap: its
// order, and its profile or its order's profiles.
func Entities(snap *store.Snapshot, ev event.Event) (orderNo string, iccids []string) {
	if !merged(ev.Type) {
		return "", nil
	}
	if ev.Type != event.OrderStatus {
		return ev.OrderNo, []string{ev.ICCID}
	}
	if o, ok := snap.Orders[ev.OrderNo]; ok {
		return ev.OrderNo, o.Value.Profiles
	}
	return ev.OrderNo, nil
}

// merged reports whether Apply merges events of type t.
func merged(t event.Type) bool {
	switch t {
	case event.OrderStatus, event.ProfileStatus, event.EsimStatus, event.SmdpEvent, event.DataUsage, event.ValidityUsage:
		return true
	}
	return false
}
