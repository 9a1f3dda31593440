package merge

import (
	"maps"
	"slices"
	"strconv"
	"time"

	"github.com/esimflow/esimflow/shared/event"
	"github.com/esimflow/esimflow/shared/intent"
	"github.com/esimflow/esimflow/shared/store"
)

// UsageLimit bounds the usage reports a profile keeps: the newest, in causal
// order. The bundles are derived from the reports kept.
const UsageLimit = 24

// usageReport is the report a DATA_USAGE event makes.
func usageReport(ev event.Event, at time.Time) store.UsageReport {
	u := store.UsageReport{Used: ev.UsedVolume, Total: ev.TotalVolume, Percent: ev.UsagePercent, BundleID: ev.BundleID,
		At: at.UTC(), ProviderSeq: ev.ProviderSeq, Subscription: ev.EsimTranNo}
	if u.Subscription == "" {
		u.Subscription = ev.OrderNo
	}
	if !ev.Timed() {
		u.Seq, u.Arrival = ev.Seq, true
	}
	return u
}

// olderReport orders reports oldest first, by the evidence transitions use
// (causal), then by content so that the order is total.
func olderReport(a, b store.UsageReport) int {
	ea := evidence{providerSeq: a.ProviderSeq, at: a.At, seq: a.Seq, arrival: a.Arrival}
	eb := evidence{providerSeq: b.ProviderSeq, at: b.At, seq: b.Seq, arrival: b.Arrival}
	if c := older(ea, eb, 0, 0); c != 0 {
		return c
	}
	// One instant: the smaller figure first, as usage only grows within a
	// bundle.
	if c := cmpInt(a.Used, b.Used); c != 0 {
		return c
	}
	if a.Percent != b.Percent {
		if a.Percent < b.Percent {
			return -1
		}
		return 1
	}
	if c := cmpInt(a.Total, b.Total); c != 0 {
		return c
	}
	if c := cmpStr(a.BundleID, b.BundleID); c != 0 {
		return c
	}
	if c := cmpStr(a.Subscription, b.Subscription); c != 0 {
		return c
	}
	return cmpInt(boolInt(a.Arrival), boolInt(b.Arrival))
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// addUsage adds a report and derives the bundles and the current figures;
// it reports whether anything changed.
func addUsage(p *store.Profile, u store.UsageReport) bool {
	i, found := slices.BinarySearchFunc(p.Usage, u, olderReport)
	if found {
		return false
	}
	next := slices.Insert(slices.Clone(p.Usage), i, u)
	if len(next) > UsageLimit {
		if i == 0 {
			return false // older than every report kept
		}
		if startsBundle(next[0], next[1]) {
			// The oldest bundle goes with its last report; the names of
			// the others stay (a name counts the bundles of its size).
			trimmed := maps.Clone(p.BundlesTrimmed)
			if trimmed == nil {
				trimmed = map[string]int{}
			}
			trimmed[volumeName(next[0].Total)]++
			p.BundlesTrimmed = trimmed
		}
		next = next[1:]
	}
	p.Usage = next
	p.Bundles = bundles(p.Usage, p.BundlesTrimmed)
	cur := p.Bundles[0]
	p.Bundle, p.UsedVolume, p.TotalVolume, p.UsagePercent = cur.ID, cur.Used, cur.Total, cur.Percent
	return true
}

// exhausted reports whether a report says the bundle is used up.
func exhausted(u store.UsageReport) bool {
	return u.Percent >= 100 || (u.Total > 0 && u.Used >= u.Total)
}

// startsBundle reports whether report u, following prev, starts a new
// bundle: another subscription's (a reused ICCID); a top-up, where the
// provider names another bundle, else the total grows, else usage falls
// back after prev reported the bundle used up.
func startsBundle(prev, u store.UsageReport) bool {
	if otherSubscription(prev, u) {
		return true
	}
	if u.BundleID != "" || prev.BundleID != "" {
		return u.BundleID != prev.BundleID
	}
	if prev.Total > 0 && u.Total > prev.Total {
		return true
	}
	if exhausted(prev) {
		return u.Used < prev.Used || (u.Used == prev.Used && u.Percent < prev.Percent)
	}
	return false
}

func otherSubscription(a, b store.UsageReport) bool {
	return a.Subscription != "" && b.Subscription != "" && a.Subscription != b.Subscription
}

// bundles walks the reports, oldest first, into bundles, newest first. Within
// a bundle the figures only move forward.
func bundles(reports []store.UsageReport, trimmed map[string]int) []store.Bundle {
	var out []store.Bundle
	seen := maps.Clone(trimmed) // bundles so far by size name, the trimmed first
	if seen == nil {
		seen = map[string]int{}
	}
	for i, u := range reports {
		if i == 0 || startsBundle(reports[i-1], u) {
			name := volumeName(u.Total)
			seen[name]++
			out = append(out, store.Bundle{ID: bundleID(u, name, seen[name]), StartedAt: u.At})
		}
		b := &out[len(out)-1]
		b.Used, b.Total, b.Percent = max(b.Used, u.Used), max(b.Total, u.Total), max(b.Percent, u.Percent)
		b.Reports++
	}
	slices.Reverse(out)
	return out
}

// bundleID names a bundle by the provider's id, else by its size and how
// many bundles of that size came before it: "1G", a top-up "3G", the 1 GB
// bought again "1G.2"; "p" when the reports give percents only. A name from
// its size keeps a top-up's name when the reports of the bundles before it
// arrive late; a report of the bundle arriving late does not rename it
// either.
func bundleID(u store.UsageReport, name string, n int) string {
	switch {
	case u.BundleID != "":
		return u.BundleID
	case n > 1:
		return name + "." + strconv.Itoa(n)
	}
	return name
}

// volumeName is a bundle size as ids spell it: "3G", "500M", else bytes;
// "p" for none.
func volumeName(total int64) string {
	const mb, gb = 1 << 20, 1 << 30
	switch {
	case total <= 0:
		return "p"
	case total%gb == 0:
		return strconv.FormatInt(total/gb, 10) + "G"
	case total%mb == 0:
		return strconv.FormatInt(total/mb, 10) + "M"
	}
	return strconv.FormatInt(total, 10)
}

// BundleOf names the bundle a DATA_USAGE event's report belongs to in p, and
// whether it is the current one; "" when p keeps no such report (trimmed).
func BundleOf(p store.Profile, ev event.Event, at time.Time) (id string, current bool) {
	u := usageReport(ev, at)
	i, found := slices.BinarySearchFunc(p.Usage, u, olderReport)
	if !found {
		return "", false
	}
	n := 0
	for j := 1; j <= i; j++ {
		if startsBundle(p.Usage[j-1], p.Usage[j]) {
			n++
		}
	}
	// Bundles is newest first: the n-th bundle from the oldest.
	k := len(p.Bundles) - 1 - n
	if k < 0 || k >= len(p.Bundles) {
		return "", false
	}
	return p.Bundles[k].ID, k == 0
}

// StartsBundle reports whether a DATA_USAGE event's report is the first of a
// bundle after another one in p: a top-up.
func StartsBundle(p store.Profile, ev event.Event, at time.Time) bool {
	u := usageReport(ev, at)
	i, found := slices.BinarySearchFunc(p.Usage, u, olderReport)
	return found && i > 0 && startsBundle(p.Usage[i-1], u) && !otherSubscription(p.Usage[i-1], u)
}

// PeriodLimit bounds the validity periods a profile keeps, the latest.
const PeriodLimit = 12

// addPeriod records a validity period, newest first.
func addPeriod(p *store.Profile, expires time.Time) bool {
	if expires.IsZero() {
		return false
	}
	expires = expires.UTC()
	newestFirst := func(a, b time.Time) int { return b.Compare(a) }
	i, found := slices.BinarySearchFunc(p.Periods, expires, newestFirst)
	if found || i >= PeriodLimit {
		return false
	}
	p.Periods = slices.Insert(slices.Clone(p.Periods), i, expires)
	if len(p.Periods) > PeriodLimit {
		p.Periods = p.Periods[:PeriodLimit]
	}
	return true
}

// Land says where an event landed in p, the state of its profile after its
// merge, for its intents (intent.For); now is the wall clock, past which a
// validity period has ended whatever the report says.
func Land(p store.Profile, ev event.Event, at, now time.Time) intent.Landing {
	// The subscription the event names (eSIM Access events name theirs);
	// an event that names none is keyed by its ICCID alone, never by the
	// links its profile happened to have when it was processed, so that
	// its intent ids do not depend on the order events arrive in.
	l := intent.Landing{Profile: p, Subscription: intent.Subscription(ev.ICCID, ev.EsimTranNo, ev.OrderNo)}
	if sub, ok := SubscriptionOf(p, ev.OrderNo, ev.EsimTranNo); ok {
		l.OrderNo, l.TransactionID = sub.OrderNo, sub.TransactionID
	} else if ev.OrderNo == "" && ev.EsimTranNo == "" {
		l.OrderNo, l.TransactionID = p.OrderNo, p.TransactionID // the current one
	}
	switch ev.Type {
	case event.DataUsage:
		l.Bundle, l.CurrentBundle = BundleOf(p, ev, at)
		l.TopUp = StartsBundle(p, ev, at)
	case event.ValidityUsage:
		exp := ev.ExpiredTime.UTC()
		if exp.IsZero() {
			break
		}
		l.PastPeriod = exp.Before(at) || exp.Before(now) || (len(p.Periods) > 0 && p.Periods[0].After(exp))
		l.Renewal = slices.ContainsFunc(p.Periods, func(t time.Time) bool { return t.Before(exp) })
	}
	return l
}
