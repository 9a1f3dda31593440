package processor_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/esimflow/esimflow/processor"
	"github.com/esimflow/esimflow/processor/merge"
	"github.com/esimflow/esimflow/processor/merge/mergetest"
	"github.com/esimflow/esimflow/shared/event"
	"github.com/esimflow/esimflow/shared/intent"
	"github.com/esimflow/esimflow/shared/store"
	"github.com/esimflow/esimflow/shared/stream"
)

// oracle is what the store must hold after a set of events: merge.Apply on
// maps, one event at a time, and the intent ids the events ask for.
type oracle struct {
	*mergetest.State
	intents map[string]bool
}

// newOracle applies every well-formed event ESIM_EVENTS holds (they all
// carry a timestamp), stamped as the processor stamps them.
func newOracle(t testing.TB, r *rig) *oracle {
	t.Helper()
	o := &oracle{State: mergetest.New(), intents: map[string]bool{}}
	rules := intent.Rules{LowDataThresholds: r.cfg.Processor.LowDataThresholds, ValidityLowDays: intent.DefaultValidityLowDays}
	for _, m := range r.streamMsgs(t, stream.Events) {
		ev, err := event.Decode(m.Data)
		processor.Stamp(&ev, m.Header, err, m.Data, m.Sequence)
		if err != nil || ev.Type == event.Unknown || ev.Type == event.CheckHealth {
			continue
		}
		if ev.Timestamp.IsZero() {
			t.Fatalf("oracle needs timestamps: %s", m.Data)
		}
		p, err := merge.Apply(context.Background(), o, ev, ev.Timestamp)
		if err != nil {
			t.Fatal(err)
		}
		for _, in := range intent.For(ev, ev.Timestamp, merge.Land(p, ev, ev.Timestamp, time.Now()), rules) {
			o.intents[in.ID] = true
		}
	}
	return o
}

// stateReader reads an order or profile as stored.
type stateReader interface {
	Order(ctx context.Context, orderNo string) (store.Order, error)
	Profile(ctx context.Context, iccid string) (store.Profile, error)
}

// check compares the store and the intents published with the oracle: every
// order and profile equal, every intent id published exactly once.
func (o *oracle) check(t testing.TB, r *rig, st stateReader) {
	t.Helper()
	ctx := context.Background()
	diffs := 0
	for id, want := range o.Orders {
		got, err := st.Order(ctx, id)
		if g, w := mustJSON(got), mustJSON(want); err != nil || g != w {
			if diffs++; diffs <= 3 {
				t.Errorf("order %s (%v):\n got %s\nwant %s", id, err, g, w)
			}
		}
	}
	for id, want := range o.Profiles {
		got, err := st.Profile(ctx, id)
		if g, w := mustJSON(got), mustJSON(want); err != nil || g != w {
			if diffs++; diffs <= 3 {
				t.Errorf("profile %s (%v):\n got %s\nwant %s", id, err, g, w)
			}
		}
	}
	if diffs > 0 {
		t.Errorf("%d of %d entities differ from the oracle", diffs, len(o.Orders)+len(o.Profiles))
	}
	published := map[string]int{}
	for _, m := range r.streamMsgs(t, stream.Notify) {
		var in intent.Intent
		if err := json.Unmarshal(m.Data, &in); err != nil {
			t.Fatal(err)
		}
		published[in.ID]++
	}
	for id := range o.intents {
		if published[id] != 1 {
			t.Errorf("intent %s published %d times, want once", id, published[id])
		}
	}
	for id, n := range published {
		if !o.intents[id] {
			t.Errorf("intent %s published %d times, the events ask for none", id, n)
		}
	}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}
