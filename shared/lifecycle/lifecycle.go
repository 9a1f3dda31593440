// Package lifecycle plays eSIM lifecycles as a provider reports them in its
// webhooks: an order that gets its resources, activation, usage reports,
// top-ups, suspensions and re-activations, validity warnings and renewals,
// and orders cancelled before use. The chaos suite and `esimflow simulate`
// send what it plans.
//
// A plan is a pure function of the random source: the same seed gives the
// same bodies and the same send schedule, so a run can be repeated and its
// expected outcome computed from the plan alone. Within a lifecycle the
// provider's timestamps increase; the send times are jittered, so that
// neighbours often arrive out of order.
package lifecycle

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"
	"time"

	"github.com/esimflow/esimflow/shared/store"
)

// Options shape a plan.
type Options struct {
	// ESIMs is how many lifecycles (one order, one eSIM each).
	ESIMs int
	// Span is the load's duration: lifecycles start within its first 85 %.
	Span time.Duration
	// Jitter is up to how far a webhook's send time moves from its step's.
	// The steps of a lifecycle are 0.3–1.5 s apart, so a jitter of 1.5 s
	// swaps neighbours often; 0 sends each lifecycle in order.
	Jitter time.Duration
	// Prefix names the plan's orders (Prefix00000001), transactions
	// (prefix_txn_00000001) and provider ids; ICCIDPrefix the digits its ICCIDs start with (19 digits
	// in all). Two plans with different prefixes share no entity.
	Prefix, ICCIDPrefix string
}

// Epoch is when the first lifecycle's first event happened, by the
// provider's clock; each next lifecycle starts a minute later.
var Epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// RenewalEpoch is when the plan's validity periods end: far ahead, as a
// period already past warns nobody.
var RenewalEpoch = time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC)

// ESIM is one customer's eSIM and what the provider reports of it.
type ESIM struct {
	OrderNo, TransactionID, ICCID, EsimTranNo string
	// Contact is the customer, as the reseller's checkout registers it.
	Contact store.Contact
	// Events are the webhooks, in the order they happened.
	Events []Event
}

// Event is one webhook body and when, from the start of the load, the
// provider sends it.
type Event struct {
	Body []byte
	At   time.Duration
}

// Plan builds o.ESIMs lifecycles with their contacts.
func Plan(rng *rand.Rand, o Options) ([]*ESIM, error) {
	if o.ESIMs < 1 || o.Span <= 0 || o.Jitter < 0 {
		return nil, fmt.Errorf("lifecycle plan: want at least one eSIM, a positive span and a jitter of 0 or more (got %d, %v, %v)", o.ESIMs, o.Span, o.Jitter)
	}
	if len(o.ICCIDPrefix) > 12 || strings.Trim(o.ICCIDPrefix, "0123456789") != "" || o.Prefix == "" {
		return nil, fmt.Errorf("lifecycle plan: want a prefix and an ICCID prefix of at most 12 digits (got %q, %q)", o.Prefix, o.ICCIDPrefix)
	}
	lower := strings.ToLower(strings.TrimRight(o.Prefix, "-_"))
	out := make([]*ESIM, o.ESIMs)
	for i := range o.ESIMs {
		e := &ESIM{
			OrderNo:       fmt.Sprintf("%s%08d", o.Prefix, i),
			TransactionID: fmt.Sprintf("%s_txn_%08d", lower, i),
			ICCID:         fmt.Sprintf("%s%0*d", o.ICCIDPrefix, 19-len(o.ICCIDPrefix), i),
			EsimTranNo:    fmt.Sprintf("%s_esim_%d", lower, i),
		}
		e.Contact = store.Contact{TransactionID: e.TransactionID, Name: "Customer " + strconv.Itoa(i), Locale: []string{"en", "de", "es"}[i%3],
			ICCIDs: []string{e.ICCID}}
		email := fmt.Sprintf("%s.c%d@customer.example", lower, i)
		// Mostly email, some WhatsApp falling back to SMS and email, some
		// SMS, some the shop's webhook.
		switch r := rng.Float64(); {
		case r < 0.7:
			e.Contact.Email = email
		case r < 0.85:
			e.Contact.Phone = fmt.Sprintf("+4915%09d", i)
			e.Contact.Channels = []string{"sms"}
			if r < 0.78 {
				e.Contact.Email = email
				e.Contact.Channels = []string{"whatsapp", "sms", "email"}
			}
		default:
			e.Contact.Email = email
			e.Contact.Channels = []string{"webhook"}
		}
		e.plan(rng, i, fmt.Sprintf("%s-n-%d", lower, i))
		start := time.Duration(rng.Int64N(int64(o.Span) * 85 / 100))
		for k := range e.Events {
			gap := time.Duration(k) * time.Duration(300+rng.IntN(1200)) * time.Millisecond
			jitter := time.Duration(rng.IntN(1500)) * o.Jitter / 1500
			e.Events[k].At = start + gap + jitter
		}
		out[i] = e
	}
	return out, nil
}

// plan draws the events of the ith lifecycle.
func (e *ESIM) plan(rng *rand.Rand, i int, notifyID string) {
	ts := Epoch.Add(time.Duration(i) * time.Minute)
	next := func() string {
		ts = ts.Add(time.Duration(1+rng.IntN(3600)) * time.Second)
		return ts.Format(time.RFC3339)
	}
	add := func(v map[string]any) {
		body, err := json.Marshal(v)
		if err != nil {
			panic(err) // maps of strings, numbers and slices of them always marshal
		}
		e.Events = append(e.Events, Event{Body: body})
	}
	profile := map[string]any{"iccid": e.ICCID, "esimTranNo": e.EsimTranNo, "status": "GOT_RESOURCE"}
	add(map[string]any{"eventType": "ORDER_STATUS", "orderNo": e.OrderNo, "transactionId": e.TransactionID, "status": "GOT_RESOURCE",
		"timestamp": next(), "profiles": []any{profile}})
	if rng.Float64() < 0.05 { // cancelled before use
		add(map[string]any{"eventType": "ORDER_STATUS", "orderNo": e.OrderNo, "transactionId": e.TransactionID, "status": "CANCELLED",
			"timestamp": next(), "profiles": []any{map[string]any{"iccid": e.ICCID, "esimTranNo": e.EsimTranNo, "status": "CANCELLED"}}})
		return
	}
	if rng.Float64() >= 0.95 { // ordered, never used
		return
	}
	if rng.Float64() < 0.2 { // the eSIM Access envelope, with notifyId
		add(map[string]any{"notifyType": "ESIM_STATUS", "notifyId": notifyID, "eventGenerateTime": next(),
			"content": map[string]any{"orderNo": e.OrderNo, "transactionId": e.TransactionID, "iccid": e.ICCID, "esimStatus": "IN_USE", "smdpStatus": "ENABLED"}})
	} else {
		add(map[string]any{"eventType": "PROFILE_STATUS", "iccid": e.ICCID, "orderNo": e.OrderNo,
			"previousStatus": "GOT_RESOURCE", "currentStatus": "ACTIVATED", "timestamp": next()})
	}
	const total = 1 << 30
	for _, u := range []struct {
		pct  int
		prob float64
	}{{50, 0.85}, {80, 0.7}, {100, 0.5}} {
		if rng.Float64() >= u.prob {
			break
		}
		add(map[string]any{"eventType": "DATA_USAGE", "iccid": e.ICCID, "orderNo": e.OrderNo,
			"usedVolume": int64(total) * int64(u.pct) / 100, "totalVolume": total, "usagePercent": u.pct, "timestamp": next()})
	}
	if rng.Float64() < 0.3 { // a top-up: a 3 GB bundle, warned again at 80 % (issue 14, case 3)
		for _, pct := range []int{40, 85} {
			add(map[string]any{"eventType": "DATA_USAGE", "iccid": e.ICCID, "orderNo": e.OrderNo,
				"usedVolume": 3 * int64(total) * int64(pct) / 100, "totalVolume": 3 * total, "usagePercent": pct, "timestamp": next()})
		}
	}
	if rng.Float64() < 0.08 {
		add(map[string]any{"eventType": "PROFILE_STATUS", "iccid": e.ICCID, "orderNo": e.OrderNo,
			"previousStatus": "ACTIVATED", "currentStatus": "SUSPENDED", "timestamp": next()})
		if rng.Float64() < 0.5 { // re-activated: the activation is not sent again
			add(map[string]any{"eventType": "PROFILE_STATUS", "iccid": e.ICCID, "orderNo": e.OrderNo,
				"previousStatus": "SUSPENDED", "currentStatus": "ACTIVATED", "timestamp": next()})
		}
	}
	if rng.Float64() < 0.3 { // validity warnings, then a renewal warned again (issue 14, case 4)
		period := RenewalEpoch.Add(time.Duration(i) * time.Minute)
		for _, v := range []struct {
			left int
			exp  time.Time
		}{{3, period}, {1, period}, {1, period.AddDate(0, 1, 0)}} {
			add(map[string]any{"notifyType": "VALIDITY_USAGE", "eventGenerateTime": next(), "content": map[string]any{
				"orderNo": e.OrderNo, "transactionId": e.TransactionID, "iccid": e.ICCID, "durationUnit": "DAY", "totalDuration": 30,
				"expiredTime": v.exp.Format(time.RFC3339), "remain": v.left}})
		}
	}
}
