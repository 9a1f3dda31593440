package merge_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"
	"time"

	"github.com/esimflow/esimflow/processor/merge"
	"github.com/esimflow/esimflow/shared/event"
	"github.com/esimflow/esimflow/shared/store"
)

// memState keeps JSON like the real stores do, so a merge that depends on
// something the encoding loses (a time zone, a nil slice) shows up here too.
type memState struct{ orders, profiles map[string][]byte }

func newMemState() *memState {
	return &memState{orders: map[string][]byte{}, profiles: map[string][]byte{}}
}

func update[T any](m map[string][]byte, id string, zero T, fn func(*T) (bool, error)) (T, error) {
	v := zero
	if b, ok := m[id]; ok {
		if err := json.Unmarshal(b, &v); err != nil {
			return v, err
		}
	}
	changed, err := fn(&v)
	if err != nil || !changed {
		return v, err
	}
	b, err := json.Marshal(v)
	m[id] = b
	return v, err
}

func (s *memState) UpdateOrder(_ context.Context, id string, fn func(*store.Order) (bool, error)) (store.Order, error) {
	return update(s.orders, id, store.Order{OrderNo: id}, fn)
}

func (s *memState) UpdateProfile(_ context.Context, id string, fn func(*store.Profile) (bool, error)) (store.Profile, error) {
	return update(s.profiles, id, store.Profile{ICCID: id}, fn)
}

type timedEvent struct {
	ev event.Event
	at time.Time
}

// lifecycle returns the events of one order of n eSIMs in either provider
// format, each twice or more (provider retries), not yet shuffled.
func lifecycle(r *rand.Rand, orderNo string, n int, esimAccess bool) []timedEvent {
	t0 := time.Date(2024, 1, 15, 12, 0, 0, 0, time.UTC)
	var evs []timedEvent
	add := func(ev event.Event, at time.Time) {
		evs = append(evs, timedEvent{ev, at})
		for r.IntN(5) == 0 { // ~20 % duplicates, some of them more than once
			evs = append(evs, timedEvent{ev, at})
		}
	}
	order := event.Event{Type: event.OrderStatus, OrderNo: orderNo, TransactionID: "tx-" + orderNo, Status: "GOT_RESOURCE"}
	for i := range n {
		iccid := fmt.Sprintf("%s-%02d", orderNo, i)
		if !esimAccess {
			order.Profiles = append(order.Profiles, event.ProfileRef{ICCID: iccid, EsimTranNo: "E" + iccid, Status: "GOT_RESOURCE"})
		}
		tx := ""
		if esimAccess {
			tx = order.TransactionID
		}
		step := func(k int) time.Time { return t0.Add(time.Duration(i*100+k) * time.Minute) }
		if esimAccess {
			add(event.Event{Type: event.EsimStatus, ICCID: iccid, OrderNo: orderNo, TransactionID: tx, Status: "IN_USE", SmdpStatus: "ENABLED"}, step(1))
		} else {
			add(event.Event{Type: event.ProfileStatus, ICCID: iccid, OrderNo: orderNo, PreviousStatus: "GOT_RESOURCE", Status: "ACTIVATED"}, step(1))
		}
		for k, pct := range []int64{50, 80, 100} {
			add(event.Event{Type: event.DataUsage, ICCID: iccid, OrderNo: orderNo, TransactionID: tx,
				UsedVolume: pct * 10, TotalVolume: 1000, UsagePercent: float64(pct), HasUsage: true}, step(2+k))
		}
		for k, left := range []int64{3, 1} {
			add(event.Event{Type: event.ValidityUsage, ICCID: iccid, OrderNo: orderNo, TransactionID: tx, DurationUnit: "DAY",
				TotalDuration: 30, RemainDays: left, ExpiredTime: t0.Add(30 * 24 * time.Hour)}, step(5+k))
		}
		if r.IntN(4) == 0 { // two validity reports at one instant
			add(event.Event{Type: event.ValidityUsage, ICCID: iccid, DurationUnit: "DAY", TotalDuration: 30, RemainDays: 2}, step(6))
		}
		if r.IntN(3) == 0 {
			add(event.Event{Type: event.ProfileStatus, ICCID: iccid, PreviousStatus: "ACTIVATED", Status: "SUSPENDED"}, step(6))
		}
		if r.IntN(4) == 0 { // two statuses at the same instant: the tie must not depend on order
			add(event.Event{Type: event.ProfileStatus, ICCID: iccid, Status: "CANCELLED"}, step(6))
		}
	}
	if esimAccess {
		order.Status = "GOT_RESOURCE"
	}
	add(order, t0)
	add(event.Event{Type: event.OrderStatus, OrderNo: orderNo, Status: "COMPLETED"}, t0.Add(time.Hour*100))
	return evs
}

func apply(t *testing.T, evs []timedEvent) *memState {
	t.Helper()
	st := newMemState()
	for _, te := range evs {
		if _, err := merge.Apply(context.Background(), st, te.ev, te.at); err != nil {
			t.Fatal(err)
		}
	}
	return st
}

// TestApplyOrderIndependent is the property of invariant 2: for random
// lifecycles with duplicates, every shuffle merges to the same state.
func TestApplyOrderIndependent(t *testing.T) {
	for seed := range uint64(30) {
		r := rand.New(rand.NewPCG(seed, 7))
		evs := append(lifecycle(r, "ORD1", 3, false), lifecycle(r, "B2", 2, true)...)
		want := apply(t, evs)
		for perm := range 40 {
			shuffled := append([]timedEvent(nil), evs...)
			r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
			got := apply(t, shuffled)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("seed %d shuffle %d: state differs\n got %s\nwant %s", seed, perm, dump(got), dump(want))
			}
		}
	}
}

func dump(s *memState) string {
	out := map[string]any{}
	for k, v := range s.orders {
		out["order "+k] = json.RawMessage(v)
	}
	for k, v := range s.profiles {
		out["profile "+k] = json.RawMessage(v)
	}
	b, _ := json.MarshalIndent(out, "", " ")
	return string(b)
}

func TestApplyState(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 1))
	st := apply(t, lifecycle(r, "ORD1", 1, false))
	var p store.Profile
	if err := json.Unmarshal(st.profiles["ORD1-00"], &p); err != nil {
		t.Fatal(err)
	}
	if p.OrderNo != "ORD1" || p.TransactionID != "tx-ORD1" || p.EsimTranNo != "EORD1-00" {
		t.Errorf("links = %q %q %q", p.OrderNo, p.TransactionID, p.EsimTranNo)
	}
	if p.UsagePercent != 100 || p.UsedVolume != 1000 || p.TotalVolume != 1000 {
		t.Errorf("usage = %v %v/%v", p.UsagePercent, p.UsedVolume, p.TotalVolume)
	}
	var o store.Order
	if err := json.Unmarshal(st.orders["ORD1"], &o); err != nil {
		t.Fatal(err)
	}
	if o.Status != "COMPLETED" || o.PreviousStatus != "GOT_RESOURCE" || !reflect.DeepEqual(o.Profiles, []string{"ORD1-00"}) {
		t.Errorf("order = %+v", o)
	}
}

func TestProfileStatusGuardedByTime(t *testing.T) {
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name   string
		events []timedEvent
		status string
		prev   string
	}{
		{"in order", []timedEvent{{ev("GOT_RESOURCE", ""), t0}, {ev("ACTIVATED", "GOT_RESOURCE"), t0.Add(time.Hour)}}, "ACTIVATED", "GOT_RESOURCE"},
		{"late older event is history only", []timedEvent{{ev("ACTIVATED", ""), t0.Add(time.Hour)}, {ev("GOT_RESOURCE", ""), t0}}, "ACTIVATED", "GOT_RESOURCE"},
		{"duplicate", []timedEvent{{ev("ACTIVATED", ""), t0}, {ev("ACTIVATED", ""), t0}}, "ACTIVATED", ""},
		{"provider's previous status wins", []timedEvent{{ev("SUSPENDED", "ACTIVATED"), t0.Add(time.Hour)}, {ev("GOT_RESOURCE", ""), t0}}, "SUSPENDED", "ACTIVATED"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := store.Profile{ICCID: "1"}
			for _, te := range tt.events {
				merge.Profile(&p, te.ev, te.at)
			}
			if p.Status != tt.status || p.PreviousStatus != tt.prev {
				t.Errorf("status = %q (prev %q), want %q (prev %q)", p.Status, p.PreviousStatus, tt.status, tt.prev)
			}
		})
	}
}

func TestValidityLatestReportWins(t *testing.T) {
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	exp := t0.Add(30 * 24 * time.Hour)
	report := func(left int64) event.Event {
		return event.Event{Type: event.ValidityUsage, ICCID: "1", DurationUnit: "DAY", TotalDuration: 30, RemainDays: left, ExpiredTime: exp}
	}
	tests := []struct {
		name   string
		events []timedEvent
		remain int64
	}{
		{"in order", []timedEvent{{report(3), t0}, {report(1), t0.Add(48 * time.Hour)}}, 1},
		{"late older report ignored", []timedEvent{{report(1), t0.Add(48 * time.Hour)}, {report(3), t0}}, 1},
		{"same instant: less left wins", []timedEvent{{report(1), t0}, {report(2), t0}}, 1},
		{"same instant, other order", []timedEvent{{report(2), t0}, {report(1), t0}}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := store.Profile{ICCID: "1"}
			for _, te := range tt.events {
				merge.Profile(&p, te.ev, te.at)
			}
			if p.Validity == nil || p.Validity.Remain != tt.remain || !p.Validity.ExpiresAt.Equal(exp) || p.Validity.Unit != "DAY" || p.Validity.Total != 30 {
				t.Errorf("validity %+v, want %d left, expiring %v", p.Validity, tt.remain, exp)
			}
			if merge.Profile(&p, tt.events[0].ev, tt.events[0].at) {
				t.Error("a duplicate report reported a change")
			}
		})
	}
}

func ev(status, prev string) event.Event {
	return event.Event{Type: event.ProfileStatus, ICCID: "1", Status: status, PreviousStatus: prev}
}

func TestUsageOnlyForward(t *testing.T) {
	t0 := time.Now()
	p := store.Profile{ICCID: "1"}
	usage := func(pct int64) event.Event {
		return event.Event{Type: event.DataUsage, ICCID: "1", UsedVolume: pct, TotalVolume: 100, UsagePercent: float64(pct), HasUsage: true}
	}
	merge.Profile(&p, usage(80), t0)
	if changed := merge.Profile(&p, usage(50), t0.Add(time.Minute)); p.UsagePercent != 80 || p.UsedVolume != 80 {
		t.Errorf("usage went back: %v (changed %v)", p.UsagePercent, changed)
	}
	if changed := merge.Profile(&p, usage(80), t0); changed {
		t.Error("a duplicate reported a change")
	}
}

// An order event that lists a profile with its install data (a poll of the
// order) stores it on the profile; an event without it leaves it, and of
// two that differ the smallest wins whichever came first.
func TestInstallFromOrderEvent(t *testing.T) {
	t0 := time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)
	order := func(ac string) event.Event {
		return event.Event{Type: event.OrderStatus, OrderNo: "O1", Status: "GOT_RESOURCE", Profiles: []event.ProfileRef{
			{ICCID: "1", Status: "GOT_RESOURCE", ActivationCode: ac, QRCodeURL: "https://p.example/qr/1.png", InstallURL: "https://p.example/i/1"}}}
	}
	bare := event.Event{Type: event.OrderStatus, OrderNo: "O1", Status: "GOT_RESOURCE", Profiles: []event.ProfileRef{{ICCID: "1"}}}
	o := store.Order{OrderNo: "O1"}
	for _, tt := range []struct {
		name   string
		events []event.Event
		want   string
	}{
		{"none", []event.Event{bare}, ""},
		{"polled", []event.Event{bare, order("LPA:1$a$B")}, "LPA:1$a$B"},
		{"differing, smallest first", []event.Event{order("LPA:1$a$A"), order("LPA:1$a$B")}, "LPA:1$a$A"},
		{"differing, smallest last", []event.Event{order("LPA:1$a$B"), order("LPA:1$a$A"), bare}, "LPA:1$a$A"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := store.Profile{ICCID: "1"}
			for _, e := range tt.events {
				merge.ProfileInOrder(&p, e, o, t0)
			}
			switch {
			case tt.want == "" && p.Install != nil:
				t.Errorf("install %+v, want none", p.Install)
			case tt.want != "" && (p.Install == nil || p.Install.ActivationCode != tt.want || p.Install.QRCodeURL != "https://p.example/qr/1.png" || p.Install.InstallURL != "https://p.example/i/1"):
				t.Errorf("install %+v, want %s with its links", p.Install, tt.want)
			}
		})
	}
}
