package merge_test

import (
	"encoding/json"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/esimflow/esimflow/processor/merge"
	"github.com/esimflow/esimflow/shared/store"
)

// fold merges evs in batches the way the batched processor does: read what
// the batch touches, Fold (again after reading what it lacked), write what
// changed. It returns each event with the profile it landed on: its batch's.
func fold(t *testing.T, st *memState, evs []timedEvent, batch int) []landed {
	t.Helper()
	var out []landed
	for len(evs) > 0 {
		n := min(batch, len(evs))
		timed := make([]merge.Timed, n)
		for i, te := range evs[:n] {
			timed[i] = merge.Timed{Event: te.ev, At: te.at}
		}
		evs = evs[n:]
		snap := store.NewSnapshot()
		read := func(orderNos, iccids []string) {
			for _, no := range orderNos {
				v := &store.Versioned[store.Order]{Value: store.Order{OrderNo: no}}
				if b, ok := st.orders[no]; ok {
					if err := json.Unmarshal(b, &v.Value); err != nil {
						t.Fatal(err)
					}
				}
				snap.Orders[no] = v
			}
			for _, iccid := range iccids {
				v := &store.Versioned[store.Profile]{Value: store.Profile{ICCID: iccid}}
				if b, ok := st.profiles[iccid]; ok {
					if err := json.Unmarshal(b, &v.Value); err != nil {
						t.Fatal(err)
					}
				}
				snap.Profiles[iccid] = v
			}
		}
		read(merge.Touches(timed))
		var changed merge.Changed
		for missing := merge.Fold(snap, timed, &changed); !missing.Empty(); missing = merge.Fold(snap, timed, &changed) {
			read(missing.Orders, missing.Profiles)
		}
		for no := range changed.Orders {
			st.orders[no], _ = json.Marshal(snap.Orders[no].Value)
		}
		for iccid := range changed.Profiles {
			st.profiles[iccid], _ = json.Marshal(snap.Profiles[iccid].Value)
		}
		for _, te := range timed {
			var p store.Profile
			if v, ok := snap.Profiles[te.Event.ICCID]; ok {
				p = v.Value
			}
			out = append(out, landed{timedEvent{te.Event, te.At}, p})
		}
	}
	return out
}

// TestFoldEqualsApply: merging events in batches of any size, in any order,
// gives the state Apply gives one by one — the batched processor relies on it.
func TestFoldEqualsApply(t *testing.T) {
	for seed := range uint64(30) {
		r := rand.New(rand.NewPCG(seed, 11))
		evs := append(lifecycle(r, "ORD1", 3, false), lifecycle(r, "B2", 2, true)...)
		want := apply(t, evs)
		for perm := range 20 {
			shuffled := append([]timedEvent(nil), evs...)
			r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
			batch := 1 + r.IntN(len(shuffled))
			got := newMemState()
			fold(t, got, shuffled, batch)
			if !reflect.DeepEqual(got, want) {
				t.Fatalf("seed %d shuffle %d, batches of %d: state differs\n got %s\nwant %s", seed, perm, batch, dump(got), dump(want))
			}
		}
	}
}
