package merge

import (
	"slices"
	"time"

	"github.com/esimflow/esimflow/shared/store"
)

// SubscriptionLimit bounds the subscriptions a profile keeps: the latest.
const SubscriptionLimit = 8

// Link records that an event at time at (zero: a link that dates nothing)
// names a subscription of the
// profile's ICCID (docs/design.md, "Subscriptions"): an order, its
// transaction id, the provider's subscription id (esimTranNo). ICCIDs are
// reused, so an ICCID may have had several; each keeps its own links, and the
// profile's orderNo, transactionId and esimTranNo are those of the current
// one: the one first named latest. An order listing a reused ICCID adds its
// subscription and never rewrites another's. The result is a function of the
// set of events, whatever order they are linked in.
func Link(p *store.Profile, orderNo, transactionID, esimTranNo string, at time.Time) bool {
	if orderNo == "" && esimTranNo == "" && transactionID == "" {
		return false
	}
	next := slices.Clone(p.Subscriptions)
	next = append(next, store.Subscription{OrderNo: orderNo, TransactionID: transactionID, EsimTranNo: esimTranNo, Since: at.UTC()})
	next = coalesce(next)
	if len(next) > SubscriptionLimit {
		next = next[len(next)-SubscriptionLimit:]
	}
	changed := !slices.Equal(next, p.Subscriptions)
	p.Subscriptions = next
	cur := next[len(next)-1]
	// A profile linked before subscriptions were kept may hold a
	// transaction id of its own; the current subscription's wins.
	for dst, v := range map[*string]string{&p.OrderNo: cur.OrderNo, &p.TransactionID: cur.TransactionID, &p.EsimTranNo: cur.EsimTranNo} {
		if v != "" {
			changed = set(dst, v) || changed
		}
	}
	return changed
}

// same reports whether two records name one subscription: one
// esimTranNo, order or transaction id (the reseller's id of the order).
func same(a, b store.Subscription) bool {
	return (a.EsimTranNo != "" && a.EsimTranNo == b.EsimTranNo) || (a.OrderNo != "" && a.OrderNo == b.OrderNo) ||
		(a.TransactionID != "" && a.TransactionID == b.TransactionID)
}

// coalesce merges the records that name one subscription (transitively),
// each field the smallest non-empty value and Since the earliest, and sorts
// them by Since, then by their ids: a function of the set of records.
func coalesce(subs []store.Subscription) []store.Subscription {
	for merged := true; merged; {
		merged = false
		for i := 0; i < len(subs) && !merged; i++ {
			for j := i + 1; j < len(subs); j++ {
				if same(subs[i], subs[j]) {
					subs[i] = union(subs[i], subs[j])
					subs = slices.Delete(subs, j, j+1)
					merged = true
					break
				}
			}
		}
	}
	slices.SortFunc(subs, func(a, b store.Subscription) int {
		if c := a.Since.Compare(b.Since); c != 0 {
			return c
		}
		if a.EsimTranNo != b.EsimTranNo {
			return cmpStr(a.EsimTranNo, b.EsimTranNo)
		}
		return cmpStr(a.OrderNo, b.OrderNo)
	})
	return subs
}

func union(a, b store.Subscription) store.Subscription {
	pick := func(x, y string) string {
		switch {
		case x == "":
			return y
		case y == "" || x < y:
			return x
		}
		return y
	}
	out := store.Subscription{OrderNo: pick(a.OrderNo, b.OrderNo), TransactionID: pick(a.TransactionID, b.TransactionID),
		EsimTranNo: pick(a.EsimTranNo, b.EsimTranNo), Since: a.Since}
	// The earliest time known; a link made without one (zero) dates nothing.
	if out.Since.IsZero() || (!b.Since.IsZero() && b.Since.Before(out.Since)) {
		out.Since = b.Since
	}
	return out
}

func cmpStr(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// SubscriptionOf is the profile's subscription an event names by its order
// or esimTranNo; false when it names none the profile knows.
func SubscriptionOf(p store.Profile, orderNo, esimTranNo string) (store.Subscription, bool) {
	if orderNo == "" && esimTranNo == "" {
		return store.Subscription{}, false
	}
	probe := store.Subscription{OrderNo: orderNo, EsimTranNo: esimTranNo}
	for _, s := range p.Subscriptions {
		if same(s, probe) {
			return s, true
		}
	}
	return store.Subscription{}, false
}
