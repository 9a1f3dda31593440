package intent_test

import (
	"slices"
	"testing"
	"time"

	"github.com/esimflow/esimflow/shared/event"
	"github.com/esimflow/esimflow/shared/intent"
	"github.com/esimflow/esimflow/shared/store"
)

func TestFor(t *testing.T) {
	rules := intent.Rules{LowDataThresholds: []int{80, 100}, ValidityLowDays: []int64{1, 3}}
	usage := func(pct float64) event.Event {
		return event.Event{Type: event.DataUsage, ICCID: "89", UsagePercent: pct, HasUsage: true}
	}
	tests := []struct {
		name       string
		ev         event.Event
		wantIDs    []string
		superseded []string
		after      []string
	}{
		{"activated", event.Event{Type: event.ProfileStatus, ICCID: "89", Status: "ACTIVATED"}, []string{"activation:89"}, nil, nil},
		{"esim access in use", event.Event{Type: event.EsimStatus, ICCID: "89", Status: "IN_USE"}, []string{"activation:89"}, nil, nil},
		{"suspended", event.Event{Type: event.ProfileStatus, ICCID: "89", Status: "SUSPENDED"}, nil, nil, nil},
		{"usage under every threshold", usage(50), nil, nil, nil},
		{"usage at 80", usage(80), []string{"low_data:89:b1:80"}, []string{"low_data:89:b1:100"}, nil},
		{"usage between", usage(95.5), []string{"low_data:89:b1:80"}, []string{"low_data:89:b1:100"}, nil},
		{"usage at 100 warns once, at 100", usage(100), []string{"low_data:89:b1:100"}, nil, []string{"low_data:89:b1:80"}},
		{"validity one day left", event.Event{Type: event.ValidityUsage, ICCID: "89", RemainDays: 1}, []string{"validity_low:89:none:1"}, nil, []string{"validity_low:89:none:3"}},
		{"validity three days left, superseded by one", event.Event{Type: event.ValidityUsage, ICCID: "89", RemainDays: 3}, []string{"validity_low:89:none:3"}, []string{"validity_low:89:none:1"}, nil},
		{"validity ten days left", event.Event{Type: event.ValidityUsage, ICCID: "89", RemainDays: 10}, nil, nil, nil},
		{"order status", event.Event{Type: event.OrderStatus, OrderNo: "O"}, nil, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := intent.For(tt.ev, time.Unix(0, 0), own(tt.ev), rules)
			var ids []string
			for _, in := range got {
				ids = append(ids, in.ID)
			}
			if !slices.Equal(ids, tt.wantIDs) {
				t.Errorf("ids = %v, want %v", ids, tt.wantIDs)
			}
			if len(got) == 1 && !slices.Equal(got[0].SupersededBy, tt.superseded) {
				t.Errorf("supersededBy = %v, want %v", got[0].SupersededBy, tt.superseded)
			}
			if len(got) == 1 && !slices.Equal(got[0].After, tt.after) {
				t.Errorf("after = %v, want %v", got[0].After, tt.after)
			}
		})
	}
}

// TestForDeterministic: the same event gives the same intents, field for field
// (invariant 3), whatever else has happened.
func TestForDeterministic(t *testing.T) {
	ev := event.Event{Type: event.DataUsage, ICCID: "89", UsagePercent: 85, HasUsage: true}
	at := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	rules := intent.Rules{LowDataThresholds: []int{50, 80, 100}}
	l := own(ev)
	a, b := intent.For(ev, at, l, rules), intent.For(ev, at, l, rules)
	if len(a) != 1 || a[0].ID != b[0].ID || !slices.Equal(a[0].SupersededBy, b[0].SupersededBy) || a[0].EventAt != b[0].EventAt {
		t.Errorf("not deterministic: %+v vs %+v", a, b)
	}
}

// own is the landing of a usage report that speaks for its own bundle b1
// alone.
func own(ev event.Event) intent.Landing {
	return intent.Landing{Bundles: []intent.BundleLanding{{ID: "b1", Reports: []intent.Usage{{Percent: ev.UsagePercent}}}}}
}

// TestForBundlesAndPeriods (issue 14, cases 3 and 4): thresholds per
// bundle, each report at its highest threshold; a report speaks for the
// bundle it makes a top-up; validity warnings per period, none for a period
// past at the report's time; a report speaks for the period it makes a
// renewal; top-up and renewal messages only where enabled.
func TestForBundlesAndPeriods(t *testing.T) {
	rules := intent.Rules{LowDataThresholds: []int{80, 100}, ValidityLowDays: []int64{1, 3}}
	on := rules
	on.TopUps, on.Renewals = true, true
	exp := time.Date(2024, 2, 14, 12, 0, 0, 0, time.UTC)
	usage := event.Event{Type: event.DataUsage, ICCID: "89", UsagePercent: 85, HasUsage: true}
	validity := event.Event{Type: event.ValidityUsage, ICCID: "89", RemainDays: 1, ExpiredTime: exp}
	b2 := intent.BundleLanding{ID: "b2", TopUp: true, Reports: []intent.Usage{{Percent: 40}, {Percent: 85}, {Percent: 90}, {Percent: 100}}}
	tests := []struct {
		name string
		ev   event.Event
		l    intent.Landing
		r    intent.Rules
		want []string
	}{
		{"second bundle", usage, intent.Landing{Subscription: "89.E1", Bundles: []intent.BundleLanding{b2}}, rules, []string{"low_data:89.E1:b2:80", "low_data:89.E1:b2:100"}},
		{"top-up message when enabled", usage, intent.Landing{Subscription: "89.E1", Bundles: []intent.BundleLanding{b2}}, on, []string{"topped_up:89.E1:b2", "low_data:89.E1:b2:80", "low_data:89.E1:b2:100"}},
		{"the bundle a report makes a top-up", usage, intent.Landing{Subscription: "89.E1", Bundles: []intent.BundleLanding{{ID: "b1", Reports: []intent.Usage{{Percent: 85}}}, b2}}, on,
			[]string{"low_data:89.E1:b1:80", "topped_up:89.E1:b2", "low_data:89.E1:b2:80", "low_data:89.E1:b2:100"}},
		{"a period", validity, intent.Landing{Subscription: "89.E1"}, rules, []string{"validity_low:89.E1:20240214T120000Z:1"}},
		{"renewal message when enabled", validity, intent.Landing{Subscription: "89.E1", Renewal: true}, on, []string{"renewed:89.E1:20240214T120000Z", "validity_low:89.E1:20240214T120000Z:1"}},
		{"past period", validity, intent.Landing{Subscription: "89.E1", PastPeriod: true}, on, nil},
		{"the period a report makes a renewal", validity, intent.Landing{Subscription: "89.E1", PastPeriod: true, NextPeriod: exp.AddDate(0, 1, 0)}, on, []string{"renewed:89.E1:20240314T120000Z"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ids []string
			for _, in := range intent.For(tt.ev, exp.Add(-24*time.Hour), tt.l, tt.r) {
				ids = append(ids, in.ID)
			}
			if !slices.Equal(ids, tt.want) {
				t.Errorf("ids %v, want %v", ids, tt.want)
			}
		})
	}
}

// TestOptionalSuperseded: a warning superseded by another the events ask for
// may rightly never be sent, low-data or validity alike; the highest may not.
func TestOptionalSuperseded(t *testing.T) {
	rules := intent.Rules{LowDataThresholds: []int{80, 100}, ValidityLowDays: intent.DefaultValidityLowDays}
	all := map[string]intent.Intent{}
	for _, days := range []int64{1, 3} {
		for _, in := range intent.For(event.Event{Type: event.ValidityUsage, ICCID: "89", RemainDays: days}, time.Unix(0, 0), intent.Landing{}, rules) {
			all[in.ID] = in
		}
	}
	p := store.Profile{ICCID: "89", Status: "ACTIVATED"}
	if !intent.Optional(all["validity_low:89:none:3"], all, p) {
		t.Error("three days left, with one day left also asked for: want optional")
	}
	if intent.Optional(all["validity_low:89:none:1"], all, p) {
		t.Error("one day left: want required")
	}
}

// A warning about a bundle topped up since, or a period renewed since, is
// replaced; about the current ones, or another subscription's newer
// bundle (a reused ICCID), it is not.
func TestReplaced(t *testing.T) {
	sub := intent.Subscription("8901", "T1", "")
	p := store.Profile{ICCID: "8901",
		Bundles: []store.Bundle{{ID: "1G", Subscription: "T2"}, {ID: "3G", Subscription: "T1"}, {ID: "1G", Subscription: "T1"}},
		Periods: []store.Period{{ExpiresAt: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), Subscription: sub, Live: true},
			{ExpiresAt: time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC), Subscription: sub, Live: true}}}
	for _, tt := range []struct {
		name string
		in   intent.Intent
		want string
	}{
		{"the topped-up bundle", intent.Intent{Kind: intent.LowData, Subscription: sub, Bundle: "1G"}, "bundle 3G"},
		{"the current bundle", intent.Intent{Kind: intent.LowData, Subscription: sub, Bundle: "3G"}, ""},
		{"another subscription's current bundle", intent.Intent{Kind: intent.LowData, Subscription: intent.Subscription("8901", "T2", ""), Bundle: "1G"}, ""},
		{"a bundle not in the state", intent.Intent{Kind: intent.LowData, Subscription: sub, Bundle: "5G"}, ""},
		{"the renewed period", intent.Intent{Kind: intent.ValidityLow, Subscription: sub, ExpiresAt: time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)}, "the period ending 2026-03-01T00:00:00Z"},
		{"the current period", intent.Intent{Kind: intent.ValidityLow, Subscription: sub, ExpiresAt: time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)}, ""},
		{"an activation", intent.Intent{Kind: intent.Activation, Subscription: sub}, ""},
	} {
		if got := intent.Replaced(tt.in, p); got != tt.want {
			t.Errorf("%s: %q, want %q", tt.name, got, tt.want)
		}
	}
}
