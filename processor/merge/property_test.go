package merge_test

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/esimflow/esimflow/processor/merge"
	"github.com/esimflow/esimflow/shared/event"
	"github.com/esimflow/esimflow/shared/intent"
	"github.com/esimflow/esimflow/shared/store"
)

// richLifecycle returns, in the order ingest stored them, the events of real
// lifecycles (issue 14): activation, usage to exhaustion, a top-up, a
// suspension and re-activation, validity warnings and a renewal, and for
// some ICCIDs a second customer (a reused ICCID, another order and
// esimTranNo). Each eSIM's events are timed or not at random; an untimed
// event's time is when it was stored, and its stream sequence is its place.
// Provider retries follow their original: a timed one is the same event, an
// untimed one a second stored copy.
func richLifecycle(r *rand.Rand, prefix string, n int) []timedEvent {
	t0 := time.Date(2024, 1, 15, 12, 0, 0, 0, time.UTC)
	stored := t0.Add(24 * time.Hour * 200) // untimed events are stored later than any provider time
	var evs []timedEvent
	seq := uint64(0)
	add := func(ev event.Event, at time.Time, timed bool) {
		for copies := 1; copies == 1 || r.IntN(5) == 0; copies++ {
			seq++
			e := ev
			e.Seq = seq
			if timed {
				e.Timestamp = at
			} else {
				at = stored.Add(time.Duration(seq) * time.Second)
			}
			evs = append(evs, timedEvent{e, at})
		}
	}
	for i := range n {
		iccid := fmt.Sprintf("%s%02d", prefix, i)
		timed := r.IntN(2) == 0
		customers := 1 + r.IntN(2)
		for c := range customers {
			orderNo, esim := fmt.Sprintf("%s-%d-%d", prefix, i, c), fmt.Sprintf("E%s-%d", iccid, c)
			base := t0.Add(time.Duration(c) * 90 * 24 * time.Hour)
			step := func(k int) time.Time { return base.Add(time.Duration(k) * time.Hour) }
			sub := func(ev event.Event) event.Event {
				ev.ICCID, ev.OrderNo, ev.EsimTranNo = iccid, orderNo, esim
				return ev
			}
			add(event.Event{Type: event.OrderStatus, OrderNo: orderNo, TransactionID: "tx-" + orderNo, Status: "GOT_RESOURCE",
				Profiles: []event.ProfileRef{{ICCID: iccid, EsimTranNo: esim, Status: "GOT_RESOURCE"}}}, step(0), timed)
			status := func(k int, prev, cur string) {
				add(sub(event.Event{Type: event.EsimStatus, PreviousStatus: prev, Status: cur, SmdpStatus: "ENABLED"}), step(k), timed)
			}
			usage := func(k int, used, total int64) {
				add(sub(event.Event{Type: event.DataUsage, UsedVolume: used, TotalVolume: total, UsagePercent: float64(used) * 100 / float64(total), HasUsage: true}), step(k), timed)
			}
			validity := func(k int, left int64, exp time.Time) {
				add(sub(event.Event{Type: event.ValidityUsage, DurationUnit: "DAY", TotalDuration: 30, RemainDays: left, ExpiredTime: exp}), step(k), timed)
			}
			status(1, "GOT_RESOURCE", "IN_USE")
			usage(2, 500, 1000)
			usage(3, 1000, 1000)
			usage(4, 1200, 3000) // top-up
			if r.IntN(2) == 0 {
				status(5, "IN_USE", "SUSPENDED")
				status(6, "SUSPENDED", "IN_USE") // re-activation: repeats the first
			}
			usage(7, 2550, 3000)
			validity(8, 3, base.Add(30*24*time.Hour))
			validity(9, 1, base.Add(30*24*time.Hour))
			validity(10, 30, base.Add(60*24*time.Hour)) // renewal
			if c+1 < customers {
				status(11, "IN_USE", "USED_EXPIRED")
			}
		}
	}
	return evs
}

// TestApplyOrderIndependentLifecycles (issue 14, "How it is shown"): real
// lifecycles with and without event times, shuffled, merge to the state of
// the arrival-order fold — the stream sequence deciding where the provider's
// evidence does not — and ask for the same messages (intent ids and kinds),
// one event at a time and in batches of any size.
func TestApplyOrderIndependentLifecycles(t *testing.T) {
	for seed := range uint64(12) {
		r := rand.New(rand.NewPCG(seed, 14))
		evs := richLifecycle(r, fmt.Sprintf("89%02d", seed), 4)
		want, landings := applyLanded(t, evs) // arrival order: the stream's
		wantIntents := intentsOf(landings)
		if len(wantIntents) == 0 {
			t.Fatalf("seed %d: no intents at all", seed)
		}
		for perm := range 10 {
			shuffled := append([]timedEvent(nil), evs...)
			r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
			got, landings := applyLanded(t, shuffled)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("seed %d shuffle %d: state differs\n got %s\nwant %s", seed, perm, dump(got), dump(want))
			}
			if gotIntents := intentsOf(landings); !maps.Equal(gotIntents, wantIntents) {
				t.Fatalf("seed %d shuffle %d: messages differ\n got %v\nwant %v", seed, perm, sortedKeys(gotIntents), sortedKeys(wantIntents))
			}
			got = newMemState()
			batch := 1 + r.IntN(len(shuffled))
			landings = fold(t, got, shuffled, batch)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("seed %d shuffle %d, batches of %d: state differs\n got %s\nwant %s", seed, perm, batch, dump(got), dump(want))
			}
			if gotIntents := intentsOf(landings); !maps.Equal(gotIntents, wantIntents) {
				t.Fatalf("seed %d shuffle %d, batches of %d: messages differ\n got %v\nwant %v", seed, perm, batch, sortedKeys(gotIntents), sortedKeys(wantIntents))
			}
		}
	}
}

// landed is an event with the profile its merge landed on.
type landed struct {
	timedEvent
	p store.Profile
}

// applyLanded is apply, and each event with the profile it landed on.
func applyLanded(t *testing.T, evs []timedEvent) (*memState, []landed) {
	t.Helper()
	st := newMemState()
	out := make([]landed, 0, len(evs))
	for _, te := range evs {
		p, err := merge.Apply(context.Background(), st, te.ev, te.at)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, landed{te, p})
	}
	return st, out
}

// richRules enable every message kind. The clock is the lifecycles' start,
// so only the provider's times decide which periods are past.
var (
	richRules = intent.Rules{LowDataThresholds: []int{80, 100}, ValidityLowDays: []int64{1, 3}, TopUps: true, Renewals: true}
	richNow   = time.Date(2024, 1, 15, 12, 0, 0, 0, time.UTC)
)

// intentsOf is what the events ask the notifier for, as the processor
// publishes it: intent id → kind (JetStream and the claims keep one of each
// id).
func intentsOf(ls []landed) map[string]intent.Kind {
	out := map[string]intent.Kind{}
	for _, l := range ls {
		for _, in := range intent.For(l.ev, l.at, merge.Land(l.p, l.ev, l.at, richNow), richRules) {
			out[in.ID] = in.Kind
		}
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	return slices.Sorted(maps.Keys(m))
}
