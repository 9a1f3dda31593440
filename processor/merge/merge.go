// Package merge folds events into order and profile state.
//
// Every function here is idempotent and order-independent (docs/design.md,
// Invariants 2): applying an event twice, or a set of events in any order,
// gives the same state. That is what lets many processor instances run at once
// without per-key ordering. Statuses are kept as a set of timestamped transitions and
// the current status is the latest one (ties broken by status name, so the
// winner never depends on arrival order); volumes only move forward; links
// (orderNo, transactionId, the order's profiles) fill in and never change once
// set. Each function reports whether it changed the state, so unchanged state
// is not written.
//
// State is bounded whatever the events say (issue 13: forged events must not
// fill an entity to the store's value limit): an order lists at most
// MaxOrderProfiles ICCIDs (the smallest, so the set kept does not depend on
// arrival order), each history at most HistoryLimit transitions, and one
// entity's encoded state at most about MaxStateBytes, its oldest history
// trimmed first. The decoder bounds every string an event carries (package
// event), which keeps the rest small.
package merge

import (
	"slices"
	"strings"
	"time"

	"github.com/esimflow/esimflow/shared/event"
	"github.com/esimflow/esimflow/shared/store"
)

// HistoryLimit bounds the transitions kept per order or profile: the newest
// ones win, which keeps the merge order-independent.
const HistoryLimit = 20

// MaxOrderProfiles bounds the ICCIDs an order lists.
const MaxOrderProfiles = 100

// MaxStateBytes bounds the encoded state of one order or profile: history is
// trimmed, oldest first, to stay under it.
const MaxStateBytes = 16 << 10

// Profile applies a profile-level event (PROFILE_STATUS, ESIM_STATUS,
// DATA_USAGE, VALIDITY_USAGE) at time at.
func Profile(p *store.Profile, ev event.Event, at time.Time) bool {
	changed := Link(p, ev.OrderNo, ev.TransactionID)
	changed = fill(&p.EsimTranNo, ev.EsimTranNo) || changed
	switch ev.Type {
	case event.ProfileStatus, event.EsimStatus:
		changed = addTransition(&p.History, store.Transition{Status: ev.Status, PreviousStatus: ev.PreviousStatus, SmdpStatus: ev.SmdpStatus, At: at}) || changed
		changed = set(&p.SmdpStatus, latestSmdp(p.History)) || changed
	case event.DataUsage:
		changed = forward(&p.UsedVolume, ev.UsedVolume) || changed
		changed = forward(&p.TotalVolume, ev.TotalVolume) || changed
		if ev.UsagePercent > p.UsagePercent {
			p.UsagePercent, changed = ev.UsagePercent, true
		}
	case event.ValidityUsage:
		changed = validity(p, ev, at) || changed
	}
	changed = trimHistory(&p.History, profileBytes(p)) || changed
	return settle(&p.Status, &p.PreviousStatus, &p.UpdatedAt, p.History, at) || changed
}

// validity keeps the latest report; of two reports at the same time, the one
// with less left (then the earlier expiry, the shorter period, the unit name),
// so the winner never depends on arrival order.
func validity(p *store.Profile, ev event.Event, at time.Time) bool {
	v := store.Validity{Remain: ev.RemainDays, Total: ev.TotalDuration, Unit: ev.DurationUnit, ExpiresAt: ev.ExpiredTime.UTC(), ReportedAt: at.UTC()}
	if ev.ExpiredTime.IsZero() {
		v.ExpiresAt = time.Time{}
	}
	if p.Validity != nil && !laterValidity(v, *p.Validity) {
		return false
	}
	p.Validity = &v
	return true
}

// laterValidity reports whether report a supersedes report b.
func laterValidity(a, b store.Validity) bool {
	if c := a.ReportedAt.Compare(b.ReportedAt); c != 0 {
		return c > 0
	}
	if a.Remain != b.Remain {
		return a.Remain < b.Remain
	}
	if c := a.ExpiresAt.Compare(b.ExpiresAt); c != 0 {
		return c < 0
	}
	if a.Total != b.Total {
		return a.Total < b.Total
	}
	return a.Unit < b.Unit
}

// ProfileInOrder applies what an ORDER_STATUS event says of one of its
// profiles: the link to the order, and the profile's status when listed.
func ProfileInOrder(p *store.Profile, ev event.Event, o store.Order, at time.Time) bool {
	changed := Link(p, o.OrderNo, o.TransactionID)
	for _, ref := range ev.Profiles {
		if ref.ICCID != p.ICCID {
			continue
		}
		changed = fill(&p.EsimTranNo, ref.EsimTranNo) || changed
		if ref.Status != "" {
			changed = addTransition(&p.History, store.Transition{Status: ref.Status, At: at}) || changed
			changed = trimHistory(&p.History, profileBytes(p)) || changed
			changed = settle(&p.Status, &p.PreviousStatus, &p.UpdatedAt, p.History, at) || changed
		}
	}
	return changed
}

// Link fills a profile's order number and transaction id, whichever event
// brings them first.
func Link(p *store.Profile, orderNo, transactionID string) bool {
	a := fill(&p.OrderNo, orderNo)
	b := fill(&p.TransactionID, transactionID)
	return a || b
}

// Order applies an event to its order: ORDER_STATUS moves the status and lists
// profiles; a profile event that names its order links the iccid into it.
func Order(o *store.Order, ev event.Event, at time.Time) bool {
	changed := fill(&o.TransactionID, ev.TransactionID)
	if ev.Type == event.OrderStatus {
		changed = addTransition(&o.History, store.Transition{Status: ev.Status, At: at}) || changed
		for _, ref := range ev.Profiles {
			changed = addProfile(o, ref.ICCID) || changed
		}
		changed = trimHistory(&o.History, orderBytes(o)) || changed
		changed = settle(&o.Status, &o.PreviousStatus, &o.UpdatedAt, o.History, at) || changed
	} else if ev.ICCID != "" {
		changed = addProfile(o, ev.ICCID) || changed
	}
	if o.Profiles == nil {
		o.Profiles = []string{}
	}
	return changed
}

// addProfile inserts iccid in the order's sorted list, which keeps the
// MaxOrderProfiles smallest: a function of the set of ICCIDs seen, so the
// same whatever the order events arrive in.
func addProfile(o *store.Order, iccid string) bool {
	i, found := slices.BinarySearch(o.Profiles, iccid)
	if found || iccid == "" || i >= MaxOrderProfiles {
		return false
	}
	o.Profiles = slices.Insert(o.Profiles, i, iccid)
	if len(o.Profiles) > MaxOrderProfiles {
		o.Profiles = slices.Clip(o.Profiles[:MaxOrderProfiles])
	}
	return true
}

// Sizes, in bytes, of the parts of an encoded state, generously estimated
// (field names, quotes, a time each) so the estimate stays above the JSON.
const (
	fixedBytes      = 512
	transitionBytes = 128
	stringBytes     = 8
)

// trimHistory drops the oldest transitions while the state, whose size apart
// from its history and statuses is others, would encode to more than
// MaxStateBytes. The newest transition (the current status) is always kept.
func trimHistory(h *[]store.Transition, others int) bool {
	strs := func(t store.Transition) int { return len(t.Status) + len(t.PreviousStatus) + len(t.SmdpStatus) }
	size := others
	for i, t := range *h {
		size += transitionBytes + strs(t)
		if i < 2 { // the current and previous statuses settle copies from them
			size += strs(t)
		}
	}
	n := len(*h)
	for n > 1 && size > MaxStateBytes {
		n--
		size -= transitionBytes + strs((*h)[n])
	}
	if n == len(*h) {
		return false
	}
	*h = (*h)[:n]
	return true
}

// profileBytes estimates a profile's encoded size apart from its history.
func profileBytes(p *store.Profile) int {
	n := fixedBytes + len(p.ICCID) + len(p.OrderNo) + len(p.TransactionID) + len(p.EsimTranNo)
	if p.Validity != nil {
		n += fixedBytes/2 + len(p.Validity.Unit)
	}
	return n
}

// orderBytes estimates an order's encoded size apart from its history.
func orderBytes(o *store.Order) int {
	n := fixedBytes + len(o.OrderNo) + len(o.TransactionID)
	for _, iccid := range o.Profiles {
		n += stringBytes + len(iccid)
	}
	return n
}

// newer orders transitions newest first; equal times fall back to the status
// name so the order is total.
func newer(a, b store.Transition) int {
	if c := b.At.Compare(a.At); c != 0 {
		return c
	}
	if c := strings.Compare(b.Status, a.Status); c != 0 {
		return c
	}
	if c := strings.Compare(b.PreviousStatus, a.PreviousStatus); c != 0 {
		return c
	}
	return strings.Compare(b.SmdpStatus, a.SmdpStatus)
}

func addTransition(h *[]store.Transition, t store.Transition) bool {
	if t.Status == "" {
		return false
	}
	t.At = t.At.UTC()
	i, found := slices.BinarySearchFunc(*h, t, newer)
	if found || i >= HistoryLimit {
		return false
	}
	*h = slices.Insert(*h, i, t)
	if len(*h) > HistoryLimit {
		*h = (*h)[:HistoryLimit]
	}
	return true
}

func latestSmdp(h []store.Transition) string {
	for _, t := range h {
		if t.SmdpStatus != "" {
			return t.SmdpStatus
		}
	}
	return ""
}

// settle derives the current status from the history: the latest transition,
// and before it the provider's previousStatus or else the transition before.
func settle(status, previous *string, updated *time.Time, h []store.Transition, at time.Time) bool {
	changed := false
	if len(h) > 0 {
		prev := h[0].PreviousStatus
		if prev == "" && len(h) > 1 {
			prev = h[1].Status
		}
		changed = set(status, h[0].Status)
		changed = set(previous, prev) || changed
	}
	if at.After(*updated) {
		*updated, changed = at.UTC(), true
	}
	return changed
}

func fill(dst *string, v string) bool {
	if *dst != "" || v == "" {
		return false
	}
	*dst = v
	return true
}

func set(dst *string, v string) bool {
	if *dst == v {
		return false
	}
	*dst = v
	return true
}

func forward(dst *int64, v int64) bool {
	if v <= *dst {
		return false
	}
	*dst = v
	return true
}
