// Package merge folds events into order and profile state.
//
// Every function here is idempotent and order-independent (docs/design.md,
// Invariants 2 and "Ordering"): applying an event twice, or a set of events in
// any order, gives the same state — a function of the events and, for events
// without a provider time, of their stream sequence (event.Event.Seq). That
// is what lets many processor instances run at once without per-key
// ordering. Statuses are kept as a set of transitions and the current status
// is the latest in causal order (provider sequence, event time,
// previousStatus chains at one instant, stream sequence); usage reports are
// walked into bundles, within which volumes only move forward; a profile
// keeps each subscription of its ICCID, the current one's links on top; an
// order's links fill in and never change once set. Each function reports
// whether it changed the state, so unchanged state is not written.
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
	"github.com/esimflow/esimflow/shared/intent"
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
	changed := Link(p, ev.OrderNo, ev.TransactionID, ev.EsimTranNo, at)
	switch ev.Type {
	case event.ProfileStatus, event.EsimStatus, event.SmdpEvent:
		changed = addTransition(&p.History, transition(ev, ev.Status, ev.PreviousStatus, ev.SmdpStatus, at)) || changed
		changed = set(&p.SmdpStatus, latestSmdp(p.History)) || changed
	case event.DataUsage:
		changed = addUsage(p, usageReport(ev, at)) || changed
	case event.ValidityUsage:
		changed = validity(p, ev, at) || changed
		changed = addPeriod(p, store.Period{ExpiresAt: ev.ExpiredTime, Subscription: intent.Subscription(ev.ICCID, ev.EsimTranNo, ev.OrderNo),
			Live: !ev.ExpiredTime.Before(at)}) || changed
	}
	changed = trimHistory(&p.History, profileBytes(p)) || changed
	return settle(&p.Status, &p.PreviousStatus, &p.OrderedBy, &p.UpdatedAt, p.History, at) || changed
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
	changed := false
	listed := false
	for _, ref := range ev.Profiles {
		if ref.ICCID != p.ICCID {
			continue
		}
		listed = true
		changed = Link(p, o.OrderNo, o.TransactionID, ref.EsimTranNo, at) || changed
		changed = install(p, ref) || changed
		if ref.Status != "" {
			changed = addTransition(&p.History, transition(ev, ref.Status, "", "", at)) || changed
			changed = trimHistory(&p.History, profileBytes(p)) || changed
			changed = settle(&p.Status, &p.PreviousStatus, &p.OrderedBy, &p.UpdatedAt, p.History, at) || changed
		}
	}
	if !listed {
		// Listed by an earlier event of the order, which dated the link:
		// this one only brings the order's links (its transaction id), and
		// no time, since whether the profile is in the order's list yet
		// depends on arrival order.
		changed = Link(p, o.OrderNo, o.TransactionID, "", time.Time{}) || changed
	}
	return changed
}

// install keeps how the profile is installed, from the events that list it
// with install data. A profile's install data does not change; should two
// events differ (a provider's bug), the smallest wins, so the outcome does
// not depend on the order they came in.
func install(p *store.Profile, ref event.ProfileRef) bool {
	in := store.Install{ActivationCode: ref.ActivationCode, QRCodeURL: ref.QRCodeURL, InstallURL: ref.InstallURL}
	if in == (store.Install{}) || p.Install != nil && !lessInstall(in, *p.Install) {
		return false
	}
	p.Install = &in
	return true
}

func lessInstall(a, b store.Install) bool {
	if a.ActivationCode != b.ActivationCode {
		return a.ActivationCode < b.ActivationCode
	}
	if a.QRCodeURL != b.QRCodeURL {
		return a.QRCodeURL < b.QRCodeURL
	}
	return a.InstallURL < b.InstallURL
}

// Order applies an event to its order: ORDER_STATUS moves the status and lists
// profiles; a profile event that names its order links the iccid into it.
func Order(o *store.Order, ev event.Event, at time.Time) bool {
	changed := fill(&o.TransactionID, ev.TransactionID)
	if ev.Type == event.OrderStatus {
		changed = addTransition(&o.History, transition(ev, ev.Status, "", "", at)) || changed
		for _, ref := range ev.Profiles {
			changed = addProfile(o, ref.ICCID) || changed
		}
		changed = trimHistory(&o.History, orderBytes(o)) || changed
		changed = settle(&o.Status, &o.PreviousStatus, &o.OrderedBy, &o.UpdatedAt, o.History, at) || changed
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
	transitionBytes = 256 // with a stream sequence, a receivedAt and the names of the key and the copies
	stringBytes     = 8
	usageBytes      = 288
	copyBytes       = 21
	bundleBytes     = 160
	periodBytes     = 40
)

// trimHistory drops the oldest transitions while the state, whose size apart
// from its history and statuses is others, would encode to more than
// MaxStateBytes. The newest transition (the current status) is always kept.
func trimHistory(h *[]store.Transition, others int) bool {
	strs := func(t store.Transition) int {
		return len(t.Status) + len(t.PreviousStatus) + len(t.SmdpStatus) + len(t.RawStatus) + storedBytes(t.Stored)
	}
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
	if p.Install != nil {
		n += fixedBytes/4 + len(p.Install.ActivationCode) + len(p.Install.QRCodeURL) + len(p.Install.InstallURL)
	}
	if p.Validity != nil {
		n += fixedBytes/2 + len(p.Validity.Unit)
	}
	for _, u := range p.Usage {
		n += usageBytes + len(u.BundleID) + len(u.Subscription) + storedBytes(u.Stored)
	}
	for _, b := range p.Bundles {
		n += bundleBytes + len(b.ID)
	}
	n += len(p.Periods) * periodBytes
	return n
}

// storedBytes estimates the encoded size of a record's place in the stream
// beyond what transitionBytes and usageBytes count.
func storedBytes(s store.Stored) int {
	return len(s.DedupeKey) + len(s.Copies)*copyBytes
}

// orderBytes estimates an order's encoded size apart from its history.
func orderBytes(o *store.Order) int {
	n := fixedBytes + len(o.OrderNo) + len(o.TransactionID)
	for _, iccid := range o.Profiles {
		n += stringBytes + len(iccid)
	}
	return n
}

// transition is the status change an event reports, with where it stands in
// the causal order (docs/design.md, "Ordering") and in the stream. An
// untimed event's stream sequence is its place in the causal order: each
// stored copy of it is an event of its own. The copies of a timed event (a
// provider's retry stored twice) are one event, whose sequence is the
// smallest of its copies' (foldCopy).
func transition(ev event.Event, status, previous, smdp string, at time.Time) store.Transition {
	t := store.Transition{Status: status, PreviousStatus: previous, SmdpStatus: smdp, At: at.UTC(), ProviderSeq: ev.ProviderSeq,
		Arrival: !ev.Timed(), Stored: stored(ev)}
	if status == ev.Status {
		t.RawStatus = ev.RawStatus
	}
	return t
}

// stored is where an event's copy is in the stream.
func stored(ev event.Event) store.Stored {
	s := store.Stored{Seq: ev.Seq, DedupeKey: ev.Key}
	if !ev.ReceivedAt.IsZero() {
		s.ReceivedAt = ev.ReceivedAt.UTC()
	}
	return s
}

// foldCopy folds a stored copy c of an event into dst, the record of the
// event, and reports whether it changed it: the smallest sequence is the
// event's, with its copy's key and arrival; the others, the smallest
// CopyLimit, are its copies. The result is a function of the set of copies
// folded. A copy with no sequence (merged without a stream) adds nothing;
// a record without one (kept before timed events had theirs) takes c's.
func foldCopy(dst *store.Stored, c store.Stored) bool {
	if c.Seq == 0 || c.Seq == dst.Seq || slices.Contains(dst.Copies, c.Seq) {
		return false
	}
	if dst.Seq == 0 {
		*dst = c
		return true
	}
	other := c.Seq
	if c.Seq < dst.Seq {
		other = dst.Seq
		dst.Seq, dst.DedupeKey, dst.ReceivedAt = c.Seq, c.DedupeKey, c.ReceivedAt
	}
	i, _ := slices.BinarySearch(dst.Copies, other)
	dst.Copies = slices.Insert(slices.Clone(dst.Copies), i, other)
	if len(dst.Copies) > store.CopyLimit {
		dst.Copies = dst.Copies[:store.CopyLimit]
	}
	return true
}

// How the newest transition was placed after the one before it
// (Profile.OrderedBy, Order.OrderedBy).
const (
	OrderedByProvider = "provider"       // the provider's sequence or event time
	OrderedByChain    = "previousStatus" // same instant: X→Y after what entered X
	OrderedByArrival  = "arrival"        // nothing but the stream sequence
	OrderedByTie      = "tie"            // one instant, no chain: the status names
)

// ranked is a transition with its place in a previousStatus chain among the
// transitions the provider stamped with the same instant.
type ranked struct {
	store.Transition
	rank int
}

// causal compares transitions newest first, best evidence first: the
// provider's sequence where both carry one; their times, unless both are
// untimed (an untimed event's time is when it was stored, which only
// restates the stream sequence); the previousStatus chain among timed events
// of one instant; then the stream sequence. The key is per transition, so
// the order is total and the sort a function of the set.
func causal(a, b ranked) int {
	// Timed transitions carry no sequence (transition): their ties fall to
	// the status names, as before the stream sequence was known.
	if c := older(evidenceOf(b.Transition), evidenceOf(a.Transition), b.rank, a.rank); c != 0 {
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

// evidence is where an event stands in the causal order (docs/design.md,
// "Ordering"): what transitions and usage reports are both sorted by.
type evidence struct {
	providerSeq int64
	at          time.Time
	seq         uint64
	arrival     bool
}

// evidenceOf is a transition's evidence. A timed transition's stream
// sequence is not: its copies may have been merged from either place in
// the stream.
func evidenceOf(t store.Transition) evidence {
	e := evidence{providerSeq: t.ProviderSeq, at: t.At, arrival: t.Arrival}
	if t.Arrival {
		e.seq = t.Seq
	}
	return e
}

// older compares a and b oldest first, best evidence first: the provider's
// sequence where both carry one; their times, unless both are untimed (an
// untimed event's time is when it was stored, which only restates the
// stream sequence), then their places in a previousStatus chain of one
// instant (rankA, rankB; 0 where chains do not apply); then the stream
// sequence. 0 when the evidence does not decide.
func older(a, b evidence, rankA, rankB int) int {
	if a.providerSeq > 0 && b.providerSeq > 0 && a.providerSeq != b.providerSeq {
		return cmpInt(a.providerSeq, b.providerSeq)
	}
	if !(a.arrival && b.arrival && a.seq > 0 && b.seq > 0) {
		if c := a.at.Compare(b.at); c != 0 {
			return c
		}
		if c := cmpInt(rankA, rankB); c != 0 {
			return c
		}
	}
	return cmpInt(a.seq, b.seq)
}

func cmpInt[T int | int64 | uint64](a, b T) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// rank places each timed transition in the previousStatus chains of its
// instant: one whose previousStatus another of that instant entered comes
// after it. Untimed transitions are not ranked: a status repeats in a
// lifecycle (IN_USE → SUSPENDED → IN_USE), and a chain through a repeated
// status is a cycle, so arrival orders them. A cycle among timed ones is cut
// at the instant's size, and the stream sequence breaks the tie.
func rank(h []store.Transition) []ranked {
	out := make([]ranked, len(h))
	ties := false
	for i, t := range h {
		out[i] = ranked{Transition: t}
		for _, u := range h[:i] {
			ties = ties || (!t.Arrival && !u.Arrival && t.At.Equal(u.At))
		}
	}
	if !ties {
		return out // no instant holds two timed transitions: nothing to chain
	}
	for range len(h) {
		moved := false
		for i := range out {
			a := &out[i]
			if a.Arrival || a.PreviousStatus == "" {
				continue
			}
			for j := range out {
				b := out[j]
				if i != j && !b.Arrival && b.At.Equal(a.At) && b.Status == a.PreviousStatus && b.Status != a.Status && b.rank+1 > a.rank && b.rank < len(h) {
					a.rank, moved = b.rank+1, true
				}
			}
		}
		if !moved {
			break
		}
	}
	return out
}

// sameTransition reports whether two transitions are one event's: a
// redelivery, or a copy of a timed event stored twice. Untimed events are
// one only at one stream sequence.
func sameTransition(a, b store.Transition) bool {
	return a.At.Equal(b.At) && a.Status == b.Status && a.PreviousStatus == b.PreviousStatus &&
		a.SmdpStatus == b.SmdpStatus && a.RawStatus == b.RawStatus && a.ProviderSeq == b.ProviderSeq && a.Arrival == b.Arrival &&
		(!a.Arrival || a.Seq == b.Seq)
}

func addTransition(h *[]store.Transition, t store.Transition) bool {
	if t.Status == "" {
		return false
	}
	t.At = t.At.UTC()
	for i, o := range *h {
		if sameTransition(o, t) {
			if !foldCopy(&o.Stored, t.Stored) {
				return false
			}
			*h = slices.Clone(*h)
			(*h)[i] = o
			return true
		}
	}
	next := append(slices.Clone(*h), t)
	sortHistory(next)
	if len(next) > HistoryLimit {
		if sameTransition(next[HistoryLimit], t) {
			return false // older than every transition kept
		}
		next = next[:HistoryLimit]
	}
	*h = next
	return true
}

// sortHistory orders a history newest first (causal).
func sortHistory(h []store.Transition) {
	r := rank(h)
	slices.SortFunc(r, causal)
	for i := range r {
		h[i] = r[i].Transition
	}
}

func latestSmdp(h []store.Transition) string {
	for _, t := range h {
		if t.SmdpStatus != "" {
			return t.SmdpStatus
		}
	}
	return ""
}

// settle derives the current status from the history: the latest
// transition; before it the provider's previousStatus, or else the status of
// the latest transition before it with another status (an untimed repeat of
// the latest event is a retry: docs/design.md, "Dedupe keys"); and what
// ordered the two.
func settle(status, previous, orderedBy *string, updated *time.Time, h []store.Transition, at time.Time) bool {
	changed := false
	if len(h) > 0 {
		cur, prev, by := h[0], h[0].PreviousStatus, ""
		for _, t := range h[1:] {
			if t.Status != cur.Status {
				if prev == "" {
					prev = t.Status
				}
				by = orderedBy2(h, cur, t)
				break
			}
		}
		changed = set(status, cur.Status)
		changed = set(previous, prev) || changed
		changed = set(orderedBy, by) || changed
	}
	if at.After(*updated) {
		*updated, changed = at.UTC(), true
	}
	return changed
}

// orderedBy2 names the evidence that put a after b.
func orderedBy2(h []store.Transition, a, b store.Transition) string {
	switch {
	case a.ProviderSeq > 0 && b.ProviderSeq > 0 && a.ProviderSeq != b.ProviderSeq:
		return OrderedByProvider
	case a.Arrival || b.Arrival:
		return OrderedByArrival
	case !a.At.Equal(b.At):
		return OrderedByProvider
	}
	ra, rb := 0, 0
	for _, r := range rank(h) {
		switch {
		case sameTransition(r.Transition, a):
			ra = r.rank
		case sameTransition(r.Transition, b):
			rb = r.rank
		}
	}
	if ra != rb {
		return OrderedByChain
	}
	// Two timed events of one instant and no chain: nothing says which came
	// first, and their copies may have been applied from either place in
	// the stream, so their content decides (causal).
	return OrderedByTie
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
