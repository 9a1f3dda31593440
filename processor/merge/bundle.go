package merge

import (
	"maps"
	"slices"
	"strconv"
	"strings"
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
		At: at.UTC(), ProviderSeq: ev.ProviderSeq, Subscription: ev.EsimTranNo, Arrival: !ev.Timed(), Stored: stored(ev)}
	if u.Subscription == "" {
		u.Subscription = ev.OrderNo
	}
	return u
}

// olderReport orders reports oldest first, by the evidence transitions use
// (causal), then by content so that the order is total. The copies of a
// timed report compare equal, whatever their stream sequences.
func olderReport(a, b store.UsageReport) int {
	ea := evidence{providerSeq: a.ProviderSeq, at: a.At, arrival: a.Arrival}
	eb := evidence{providerSeq: b.ProviderSeq, at: b.At, arrival: b.Arrival}
	if a.Arrival {
		ea.seq = a.Seq
	}
	if b.Arrival {
		eb.seq = b.Seq
	}
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
		o := p.Usage[i].Stored
		if !foldCopy(&o, u.Stored) {
			return false
		}
		p.Usage = slices.Clone(p.Usage)
		p.Usage[i].Stored = o
		return true
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
			trimmed[trimKey(next[0].Subscription, volumeName(next[0].Total))]++
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

// span is one bundle of a walk over the reports: its reports
// reports[first..last], its id, and whether an earlier bundle of its
// subscription exists (a top-up).
type span struct {
	id, sub     string
	first, last int
	topUp       bool
}

// walk splits the reports, oldest first, into bundles, oldest first. A
// bundle's name counts the bundles of its size of its subscription before it
// (the trimmed first), so a reused ICCID's second customer's bundles are
// named as if the first's did not exist: the names of one subscription's
// bundles do not depend on when another's reports are handled.
func walk(reports []store.UsageReport, trimmed map[string]int) []span {
	var out []span
	seen := maps.Clone(trimmed) // bundles so far by subscription and size name
	if seen == nil {
		seen = map[string]int{}
	}
	subs := map[string]bool{} // subscriptions with a bundle so far, the trimmed first
	for key := range trimmed {
		if i := strings.LastIndexByte(key, ' '); i >= 0 {
			subs[key[:i]] = true
		}
	}
	for i, u := range reports {
		if i == 0 || startsBundle(reports[i-1], u) {
			name := volumeName(u.Total)
			key := trimKey(u.Subscription, name)
			seen[key]++
			out = append(out, span{id: bundleID(u, name, seen[key]), sub: u.Subscription, first: i, topUp: subs[u.Subscription]})
			subs[u.Subscription] = true
		}
		out[len(out)-1].last = i
	}
	return out
}

// trimKey is how bundles are counted (Profile.BundlesTrimmed): by size name
// within their subscription; a report naming none counts by size alone, as
// states kept before subscriptions had bundles of their own.
func trimKey(sub, name string) string {
	if sub == "" {
		return name
	}
	return sub + " " + name
}

// bundles walks the reports into bundles, newest first. Within a bundle the
// figures only move forward.
func bundles(reports []store.UsageReport, trimmed map[string]int) []store.Bundle {
	spans := walk(reports, trimmed)
	out := make([]store.Bundle, 0, len(spans))
	for _, s := range slices.Backward(spans) {
		b := store.Bundle{ID: s.id, Subscription: s.sub, StartedAt: reports[s.first].At}
		for _, u := range reports[s.first : s.last+1] {
			b.Used, b.Total, b.Percent = max(b.Used, u.Used), max(b.Total, u.Total), max(b.Percent, u.Percent)
			b.Reports++
		}
		out = append(out, b)
	}
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
	spans, k, _ := spanOf(p, ev, at)
	if k < 0 {
		return "", false
	}
	return spans[k].id, k == len(spans)-1
}

// StartsBundle reports whether a DATA_USAGE event's report is the first of a
// bundle that follows another of its subscription: a top-up.
func StartsBundle(p store.Profile, ev event.Event, at time.Time) bool {
	spans, k, i := spanOf(p, ev, at)
	return k >= 0 && spans[k].topUp && spans[k].first == i
}

// spanOf walks p's reports into bundles and finds the one, k, holding the
// event's report, p.Usage[i]; k is -1 when p keeps no such report.
func spanOf(p store.Profile, ev event.Event, at time.Time) (spans []span, k, i int) {
	i, found := slices.BinarySearchFunc(p.Usage, usageReport(ev, at), olderReport)
	if !found {
		return nil, -1, -1
	}
	spans = walk(p.Usage, p.BundlesTrimmed)
	for k, s := range spans {
		if s.first <= i && i <= s.last {
			return spans, k, i
		}
	}
	return nil, -1, -1
}

// PeriodLimit bounds the validity periods a profile keeps, the latest.
const PeriodLimit = 12

// addPeriod records a subscription's validity period, newest first.
func addPeriod(p *store.Profile, period store.Period) bool {
	if period.ExpiresAt.IsZero() {
		return false
	}
	period.ExpiresAt = period.ExpiresAt.UTC()
	i, found := slices.BinarySearchFunc(p.Periods, period, newerPeriod)
	if found {
		if !period.Live || p.Periods[i].Live {
			return false
		}
		p.Periods = slices.Clone(p.Periods)
		p.Periods[i].Live = true
		return true
	}
	if i >= PeriodLimit {
		return false
	}
	p.Periods = slices.Insert(slices.Clone(p.Periods), i, period)
	if len(p.Periods) > PeriodLimit {
		p.Periods = p.Periods[:PeriodLimit]
	}
	return true
}

// newerPeriod orders periods newest first, then by subscription.
func newerPeriod(a, b store.Period) int {
	if c := b.ExpiresAt.Compare(a.ExpiresAt); c != 0 {
		return c
	}
	return cmpStr(a.Subscription, b.Subscription)
}

// Land says where an event stands in p, the state of its profile after its
// merge, for its intents (intent.For); now is the wall clock, past which a
// validity period has ended whatever the report says.
//
// What it says of the event is decided by the profile's causal history and
// by nothing that a later event could take back, so the intents of a set
// of events are the same whatever order they are merged in (docs/design.md,
// "Messages"): every bundle warns at the thresholds its reports reach,
// current or not, and every period's reports warn unless the period had
// ended by the report's time. A report also speaks for the bundle or period
// of its subscription after its own, which it makes a top-up or a
// renewal, since handled after that one it is what makes it so.
func Land(p store.Profile, ev event.Event, at, now time.Time) intent.Landing {
	// The subscription the event names (eSIM Access events name theirs);
	// an event that names none is keyed by its ICCID alone, never by the
	// links its profile happened to have when it was processed, so that
	// its intent ids do not depend on the order events arrive in.
	sub := intent.Subscription(ev.ICCID, ev.EsimTranNo, ev.OrderNo)
	l := intent.Landing{Subscription: sub}
	if s, ok := SubscriptionOf(p, ev.OrderNo, ev.EsimTranNo); ok {
		l.OrderNo, l.TransactionID = s.OrderNo, s.TransactionID
	} else if ev.OrderNo == "" && ev.EsimTranNo == "" {
		l.OrderNo, l.TransactionID = p.OrderNo, p.TransactionID // the current one
	}
	switch ev.Type {
	case event.DataUsage:
		l.Bundles = bundleLandings(p, ev, at)
	case event.ValidityUsage:
		exp := ev.ExpiredTime.UTC()
		if exp.IsZero() {
			break
		}
		l.PastPeriod = exp.Before(at) || exp.Before(now)
		for _, q := range p.Periods { // newest first
			switch {
			case q.Subscription != sub:
			case q.ExpiresAt.Before(exp):
				l.Renewal = true
			case q.ExpiresAt.After(exp) && q.Live && !q.ExpiresAt.Before(now):
				l.NextPeriod = q.ExpiresAt // the last one seen is the closest
			}
		}
	}
	return l
}

// bundleLandings are the bundles a DATA_USAGE report speaks for (see
// intent.Landing): its own, with its own figures, or every report of it
// where the report is its first (it may have split the bundle off another);
// and where it is its bundle's last, the next bundle of its subscription,
// whole.
func bundleLandings(p store.Profile, ev event.Event, at time.Time) []intent.BundleLanding {
	spans, k, i := spanOf(p, ev, at)
	if k < 0 {
		return nil // older than every report kept
	}
	whole := func(s span) intent.BundleLanding {
		b := intent.BundleLanding{ID: s.id, TopUp: s.topUp}
		for _, u := range p.Usage[s.first : s.last+1] {
			b.Reports = append(b.Reports, intent.Usage{Used: u.Used, Total: u.Total, Percent: u.Percent})
		}
		return b
	}
	own := spans[k]
	out := []intent.BundleLanding{{ID: own.id, Reports: []intent.Usage{{Used: ev.UsedVolume, Total: ev.TotalVolume, Percent: ev.UsagePercent}}}}
	if i == own.first {
		out[0] = whole(own)
	}
	if i == own.last {
		for _, s := range spans[k+1:] {
			if s.sub == own.sub {
				out = append(out, whole(s))
				break
			}
		}
	}
	return out
}
