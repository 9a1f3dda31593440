// Package intent defines notification intents: what the processor asks the
// notifier to tell a customer, and how an event turns into them.
//
// Intents are deterministic (docs/design.md, Invariants 3): an intent's id
// comes from the event alone — activation:<iccid>,
// low_data:<iccid>:<threshold>, validity_low:<iccid>:<days> — and is the
// Nats-Msg-Id of its publish, so
// reprocessing an event re-publishes the same intents and the notifier's
// claims send each id once.
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
)

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
	// SupersededBy lists intent ids that make this one stale once they are
	// claimed or sent: a warning at 80 % is suppressed when the 100 % one is
	// under way or out.
	SupersededBy []string `json:"supersededBy,omitempty"`
	// After lists intent ids that, while in flight, must finish before this
	// one is sent, so a customer never gets the 80 % warning after the 100 %
	// one. Together with SupersededBy it orders a threshold's messages
	// without a lock: of two concurrent warnings the lower one either went
	// first or is suppressed.
	After   []string  `json:"after,omitempty"`
	EventAt time.Time `json:"eventAt"`
}

// ActivationID, LowDataID and ValidityLowID build intent ids.
func ActivationID(iccid string) string { return "activation:" + iccid }

func LowDataID(iccid string, threshold int) string {
	return "low_data:" + iccid + ":" + strconv.Itoa(threshold)
}

func ValidityLowID(iccid string, days int64) string {
	return fmt.Sprintf("validity_low:%s:%d", iccid, days)
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
}

// DefaultValidityLowDays warns a customer one and three days before expiry.
var DefaultValidityLowDays = []int64{1, 3}

// For returns the intents an event asks for; at is the event's time (the
// provider's, or when JetStream stored it), p the state of the event's
// profile once the event is merged. It reads nothing but its arguments.
//
// A profile whose current status is terminal (event.Terminal: cancelled,
// revoked, released…) asks for nothing: its customer is not told the eSIM is
// active, nor warned about data or days it no longer has (issue 14, case 6).
func For(ev event.Event, at time.Time, p store.Profile, r Rules) []Intent {
	if event.Terminal(p.Status) {
		return nil
	}
	base := Intent{ICCID: ev.ICCID, OrderNo: ev.OrderNo, TransactionID: ev.TransactionID, EventAt: at.UTC()}
	switch ev.Type {
	case event.ProfileStatus, event.EsimStatus:
		if slices.Contains(ActivatedStatuses, ev.Status) {
			in := base
			in.ID, in.Kind = ActivationID(ev.ICCID), Activation
			return []Intent{in}
		}
	case event.DataUsage:
		// Only the highest threshold crossed: a report at 100 % warns once, at
		// 100, not at 80 and 100 together.
		crossed := 0
		for _, t := range r.LowDataThresholds {
			if ev.UsagePercent >= float64(t) {
				crossed = t
			}
		}
		if crossed == 0 {
			return nil
		}
		in := base
		in.ID, in.Kind, in.Threshold = LowDataID(ev.ICCID, crossed), LowData, crossed
		in.UsagePercent, in.UsedVolume, in.TotalVolume = ev.UsagePercent, ev.UsedVolume, ev.TotalVolume
		for _, t := range r.LowDataThresholds {
			switch {
			case t > crossed:
				in.SupersededBy = append(in.SupersededBy, LowDataID(ev.ICCID, t))
			case t < crossed:
				in.After = append(in.After, LowDataID(ev.ICCID, t))
			}
		}
		return []Intent{in}
	case event.ValidityUsage:
		if slices.Contains(r.ValidityLowDays, ev.RemainDays) {
			in := base
			in.ID, in.Kind, in.RemainDays = ValidityLowID(ev.ICCID, ev.RemainDays), ValidityLow, ev.RemainDays
			return []Intent{in}
		}
	}
	return nil
}
