// Package intent defines notification intents: what the processor asks the
// notifier to tell a customer, and how an event turns into them.
//
// Intents are deterministic (docs/design.md, Invariants 3 and "Messages"):
// an intent's id comes from the event and its place in its profile's causal
// history, per subscription, data bundle and validity period — activation:<sub>,
// low_data:<sub>:<bundle>:<threshold>, validity_low:<sub>:<period>:<days>,
// topped_up:<sub>:<bundle>, renewed:<sub>:<period> — and is the Nats-Msg-Id
// of its publish, so reprocessing an event re-publishes the same intents and
// the notifier's claims send each id once; a top-up or a new period warns
// again. The intents of a set of events are the same whatever order they
// are merged in.
package intent

import (
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/esimflow/esimflow/shared/event"
	"github.com/esimflow/esimflow/shared/store"
)

// Kind is what a message is about; it is the last token of the intent's subject.
type Kind string

const (
	Activation  Kind = "activation"
	LowData     Kind = "low_data"
	ValidityLow Kind = "validity_low"
	// ToppedUp and Renewed are sent only where Rules enable them.
	ToppedUp Kind = "topped_up"
	Renewed  Kind = "renewed"
)

// Kinds lists every kind, for the notifier's templates.
var Kinds = []Kind{Activation, LowData, ValidityLow, ToppedUp, Renewed}

// Intent is one message to send, as published on ESIM_NOTIFY.
type Intent struct {
	ID            string  `json:"id"`
	Kind          Kind    `json:"kind"`
	ICCID         string  `json:"iccid"`
	OrderNo       string  `json:"orderNo,omitempty"`
	TransactionID string  `json:"transactionId,omitempty"`
	Threshold     int     `json:"threshold,omitempty"`
	UsagePercent  float64 `json:"usagePercent,omitempty"`
	UsedVolume    int64   `json:"usedVolume,omitempty"`
	TotalVolume   int64   `json:"totalVolume,omitempty"`
	RemainDays    int64   `json:"remainDays,omitempty"`
	// Subscription, Bundle and Period name what the message is about
	// (Landing).
	Subscription string    `json:"subscription,omitempty"`
	Bundle       string    `json:"bundle,omitempty"`
	ExpiresAt    time.Time `json:"expiresAt,omitzero"`
	// SupersededBy lists intent ids that make this one stale once they are
	// claimed or sent: a warning at 80 % is suppressed when the 100 % one is
	// under way or out, one of three days left when the one-day one is.
	SupersededBy []string `json:"supersededBy,omitempty"`
	// After lists intent ids that, while in flight, must finish before this
	// one is sent, so a customer never gets the 80 % warning after the 100 %
	// one. Together with SupersededBy it orders a threshold's messages
	// without a lock: of two concurrent warnings the lower one either went
	// first or is suppressed.
	After   []string  `json:"after,omitempty"`
	EventAt time.Time `json:"eventAt"`
}

// ActivationID, LowDataID, ValidityLowID, ToppedUpID and RenewedID build
// intent ids: sub is a subscription (Subscription), bundle a data bundle's
// id, period a validity period (Period).
func ActivationID(sub string) string { return "activation:" + sub }

func LowDataID(sub, bundle string, threshold int) string {
	return "low_data:" + sub + ":" + bundle + ":" + strconv.Itoa(threshold)
}

func ValidityLowID(sub, period string, days int64) string {
	return fmt.Sprintf("validity_low:%s:%s:%d", sub, period, days)
}

func ToppedUpID(sub, bundle string) string { return "topped_up:" + sub + ":" + bundle }

func RenewedID(sub, period string) string { return "renewed:" + sub + ":" + period }

// Period names a validity period by its end (the provider's expiredTime);
// "none" when the report gives none.
func Period(expires time.Time) string {
	if expires.IsZero() {
		return "none"
	}
	return expires.UTC().Format("20060102T150405Z")
}

// Subscription names an ICCID's subscription: the ICCID with the provider's
// subscription id (eSIM Access's esimTranNo), else with the order, since
// ICCIDs are reused; the ICCID alone until either is known.
func Subscription(iccid, esimTranNo, orderNo string) string {
	switch {
	case esimTranNo != "":
		return iccid + "." + esimTranNo
	case orderNo != "":
		return iccid + ".o" + orderNo
	}
	return iccid
}

// Landing is where an event stands in its profile's causal history after
// its merge: what its intents are derived from. The processor derives it
// (processor/merge.Land); For reads nothing else.
//
// The intents of a set of events do not depend on the order they are
// merged in (docs/design.md, "Messages"): what an event asks for is decided
// by evidence that later events never retract, and an event also speaks for
// what it makes true of its neighbours — the bundle or period after its own,
// which it turns into a top-up or a renewal.
type Landing struct {
	// Subscription is the id of the event's subscription (Subscription);
	// OrderNo and TransactionID its links where the event lacks them (never
	// another subscription's: a reused ICCID's first customer is not told
	// of the second's eSIM).
	Subscription           string
	OrderNo, TransactionID string
	// Bundles are the data bundles a DATA_USAGE report speaks for, with the
	// reports whose thresholds it asks for: its own bundle, and the bundle
	// of its subscription after it when the report is its bundle's last.
	Bundles []BundleLanding
	// PastPeriod: a VALIDITY_USAGE report of a period that had ended at the
	// report's time or by the processor's clock; Renewal: the report's
	// period follows another of its subscription; NextPeriod: the period of
	// its subscription after the report's, which the report's makes a
	// renewal (zero when none, or when it has ended by the clock).
	PastPeriod bool
	Renewal    bool
	NextPeriod time.Time
}

// BundleLanding is a data bundle an event's intents speak for.
type BundleLanding struct {
	ID string
	// TopUp: the bundle follows another of its subscription.
	TopUp bool
	// Reports whose highest threshold crossed asks for a warning, oldest
	// first.
	Reports []Usage
}

// Usage is what one usage report said.
type Usage struct {
	Used, Total int64
	Percent     float64
}

// ActivatedStatuses are the profile statuses that mean the customer's eSIM
// works: the documented ACTIVATED and eSIM Access's IN_USE.
var ActivatedStatuses = []string{"ACTIVATED", "IN_USE"}

// Rules are the deployment's choices that shape intents.
type Rules struct {
	// LowDataThresholds are the usage percents that notify, ascending.
	LowDataThresholds []int
	// ValidityLowDays are the days-left values that notify.
	ValidityLowDays []int64
	// TopUps and Renewals enable the topped_up and renewed messages.
	TopUps, Renewals bool
}

// DefaultValidityLowDays warns a customer one and three days before expiry.
var DefaultValidityLowDays = []int64{1, 3}

// For returns the intents an event asks for; at is the event's time (the
// provider's, or when JetStream stored it), l where it landed. It reads
// nothing but its arguments.
//
// Whether the customer is still to be told is the notifier's to decide when
// the message is due: a profile whose status is terminal by then
// (event.Terminal) gets none (issue 14, case 6), since what a later event
// says cannot take back an intent published already.
func For(ev event.Event, at time.Time, l Landing, r Rules) []Intent {
	sub := l.Subscription
	if sub == "" {
		sub = ev.ICCID
	}
	orderNo, tx := ev.OrderNo, ev.TransactionID
	if orderNo == "" {
		orderNo = l.OrderNo
	}
	if tx == "" {
		tx = l.TransactionID
	}
	base := Intent{ICCID: ev.ICCID, OrderNo: orderNo, TransactionID: tx, Subscription: sub, EventAt: at.UTC()}
	switch ev.Type {
	case event.ProfileStatus, event.EsimStatus:
		if slices.Contains(ActivatedStatuses, ev.Status) {
			in := base
			in.ID, in.Kind = ActivationID(sub), Activation
			return []Intent{in}
		}
	case event.DataUsage:
		var out []Intent
		for _, b := range l.Bundles {
			out = append(out, bundleIntents(base, b, r)...)
		}
		return out
	case event.ValidityUsage:
		var out []Intent
		if !l.PastPeriod {
			period := Period(ev.ExpiredTime)
			in := base
			in.ExpiresAt = ev.ExpiredTime.UTC()
			if l.Renewal && r.Renewals {
				in.ID, in.Kind = RenewedID(sub, period), Renewed
				out = append(out, in)
			}
			if slices.Contains(r.ValidityLowDays, ev.RemainDays) {
				in.ID, in.Kind, in.RemainDays = ValidityLowID(sub, period, ev.RemainDays), ValidityLow, ev.RemainDays
				// Ordered like the low-data thresholds: fewer days left
				// makes a warning of more days stale (after an outage both
				// may be pending: the customer gets the one true now).
				for _, d := range r.ValidityLowDays {
					switch {
					case d < ev.RemainDays:
						in.SupersededBy = append(in.SupersededBy, ValidityLowID(sub, period, d))
					case d > ev.RemainDays:
						in.After = append(in.After, ValidityLowID(sub, period, d))
					}
				}
				out = append(out, in)
			}
		}
		if !l.NextPeriod.IsZero() && r.Renewals {
			in := base
			in.ID, in.Kind, in.ExpiresAt = RenewedID(sub, Period(l.NextPeriod)), Renewed, l.NextPeriod.UTC()
			out = append(out, in)
		}
		return out
	}
	return nil
}

// bundleIntents are the intents of one bundle: its top-up message, and a
// warning at the highest threshold each report crossed — a report at 100 %
// warns once, at 100, not at 80 and 100 together.
func bundleIntents(base Intent, b BundleLanding, r Rules) []Intent {
	var out []Intent
	base.Bundle = b.ID
	if b.TopUp && r.TopUps {
		in := base
		in.ID, in.Kind = ToppedUpID(base.Subscription, b.ID), ToppedUp
		out = append(out, in)
	}
	var asked []int
	for _, u := range b.Reports {
		crossed := 0
		for _, t := range r.LowDataThresholds {
			if u.Percent >= float64(t) {
				crossed = t
			}
		}
		if crossed == 0 || slices.Contains(asked, crossed) {
			continue
		}
		asked = append(asked, crossed)
		in := base
		in.UsagePercent, in.UsedVolume, in.TotalVolume = u.Percent, u.Used, u.Total
		in.ID, in.Kind, in.Threshold = LowDataID(base.Subscription, b.ID, crossed), LowData, crossed
		for _, t := range r.LowDataThresholds {
			switch {
			case t > crossed:
				in.SupersededBy = append(in.SupersededBy, LowDataID(base.Subscription, b.ID, t))
			case t < crossed:
				in.After = append(in.After, LowDataID(base.Subscription, b.ID, t))
			}
		}
		out = append(out, in)
	}
	return out
}

// Optional reports whether esimflow may rightly never send in, given every
// intent a lifecycle's events ask for (by id) and the final state of in's
// profile: a warning superseded by one among them (80 % by 100 %, three
// days left by one day left: it is suppressed once that one is under way)
// or about a bundle or period replaced in the final state (Replaced),
// or any message of an eSIM whose
// final status is terminal (the notifier's call when the message is due,
// docs/adr/0008). Every other intent is a function of the set of events and
// must reach the customer. Oracles of the chaos suite and of `esimflow
// simulate` hold esimflow to this.
func Optional(in Intent, all map[string]Intent, p store.Profile) bool {
	if event.Terminal(p.Status) || Replaced(in, p) != "" {
		return true
	}
	return slices.ContainsFunc(in.SupersededBy, func(s string) bool { _, ok := all[s]; return ok })
}

// Replaced names what replaced the bundle or validity period a warning is
// about, "" when nothing has in p: a low-data warning of a bundle its
// subscription has topped up since, a validity warning of a period renewed
// since. After an outage such a warning may still be pending; the customer
// is told of what they have now, not of what they had (issue 16). Like a
// terminal status it is decided when the message is due, from the profile
// then.
func Replaced(in Intent, p store.Profile) string {
	switch in.Kind {
	case LowData:
		for i, b := range p.Bundles { // newest first
			if b.ID != in.Bundle || !sameSubscription(in, p.ICCID, b.Subscription) {
				continue
			}
			for _, newer := range p.Bundles[:i] {
				if newer.Subscription == b.Subscription {
					return "bundle " + newer.ID
				}
			}
			return ""
		}
	case ValidityLow:
		for _, q := range p.Periods {
			if q.Live && q.Subscription == in.Subscription && q.ExpiresAt.After(in.ExpiresAt) {
				return "the period ending " + q.ExpiresAt.UTC().Format(time.RFC3339)
			}
		}
	}
	return ""
}

// sameSubscription: a bundle names its subscription by the provider's id
// or the order (store.Bundle), an intent by Subscription.
func sameSubscription(in Intent, iccid, bundleSub string) bool {
	return in.Subscription == Subscription(iccid, bundleSub, "") || in.Subscription == Subscription(iccid, "", bundleSub)
}
