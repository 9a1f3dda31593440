package merge_test

import (
	"context"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/esimflow/esimflow/processor/merge"
	"github.com/esimflow/esimflow/shared/event"
	"github.com/esimflow/esimflow/shared/store"
)

// permutations calls fn with every order of n items.
func permutations(n int, fn func([]int)) {
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	var rec func(k int)
	rec = func(k int) {
		if k == n {
			fn(append([]int(nil), idx...))
			return
		}
		for i := k; i < n; i++ {
			idx[k], idx[i] = idx[i], idx[k]
			rec(k + 1)
			idx[k], idx[i] = idx[i], idx[k]
		}
	}
	rec(0)
}

// stored is an untimed event as the processor sees it: its stream sequence,
// and its time the one JetStream stored it at.
func stored(ev event.Event, seq uint64) timedEvent {
	ev.Seq = seq
	return timedEvent{ev, time.Date(2024, 1, 15, 12, 0, int(seq), 0, time.UTC)}
}

// TestUntimedLifecycleOrderedByArrival (issue 14, case 1): events with
// neither an id nor a time are ordered by the stream sequence, in whatever
// order they are merged; a repeat of an older event after a different one
// is a new fact, and a repeat of the latest is a retry.
func TestUntimedLifecycleOrderedByArrival(t *testing.T) {
	esim := func(status string) event.Event {
		return event.Event{Type: event.EsimStatus, ICCID: "1", Status: status, SmdpStatus: "ENABLED"}
	}
	doc := func(prev, status string) event.Event {
		return event.Event{Type: event.ProfileStatus, ICCID: "1", PreviousStatus: prev, Status: status}
	}
	tests := []struct {
		name         string
		events       []timedEvent
		status, prev string
		orderedBy    string
	}{
		{"eSIM Access re-activation", []timedEvent{stored(esim("IN_USE"), 1), stored(esim("SUSPENDED"), 2), stored(esim("IN_USE"), 3)}, "IN_USE", "SUSPENDED", merge.OrderedByArrival},
		{"documented re-activation", []timedEvent{stored(doc("GOT_RESOURCE", "ACTIVATED"), 1), stored(doc("ACTIVATED", "SUSPENDED"), 2), stored(doc("SUSPENDED", "ACTIVATED"), 3)}, "ACTIVATED", "SUSPENDED", merge.OrderedByArrival},
		{"suspended again", []timedEvent{stored(esim("IN_USE"), 1), stored(esim("SUSPENDED"), 2), stored(esim("IN_USE"), 3), stored(esim("SUSPENDED"), 4)}, "SUSPENDED", "IN_USE", merge.OrderedByArrival},
		{"a retry of the latest", []timedEvent{stored(esim("GOT_RESOURCE"), 1), stored(esim("IN_USE"), 2), stored(esim("IN_USE"), 3)}, "IN_USE", "GOT_RESOURCE", merge.OrderedByArrival},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var want *store.Profile
			permutations(len(tt.events), func(order []int) {
				p := store.Profile{ICCID: "1"}
				for _, i := range order {
					merge.Profile(&p, tt.events[i].ev, tt.events[i].at)
				}
				for _, i := range order { // redeliveries change nothing
					if merge.Profile(&p, tt.events[i].ev, tt.events[i].at) {
						t.Errorf("order %v: redelivery of %d changed the state", order, i)
					}
				}
				if p.Status != tt.status || p.PreviousStatus != tt.prev || p.OrderedBy != tt.orderedBy {
					t.Errorf("order %v: status %s (previous %s, ordered by %q), want %s (previous %s, ordered by %q)",
						order, p.Status, p.PreviousStatus, p.OrderedBy, tt.status, tt.prev, tt.orderedBy)
				}
				if want == nil {
					want = &p
				} else if mustJSON(t, p) != mustJSON(t, *want) {
					t.Errorf("order %v: state differs\n got %s\nwant %s", order, mustJSON(t, p), mustJSON(t, *want))
				}
			})
			if len(want.History) != len(tt.events) {
				t.Errorf("history %+v: want every stored event", want.History)
			}
		})
	}
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestCausalOrderEvidence (issue 14, cases 2 and 7): the provider's sequence
// first, then its event time, then previousStatus chains among events of one
// instant; the state says which decided.
func TestCausalOrderEvidence(t *testing.T) {
	t0 := time.Date(2024, 1, 15, 12, 0, 0, 0, time.UTC)
	profile := func(prev, status string, seq int64) event.Event {
		return event.Event{Type: event.ProfileStatus, ICCID: "1", OrderNo: "O1", PreviousStatus: prev, Status: status, Timestamp: t0, ProviderSeq: seq}
	}
	order := event.Event{Type: event.OrderStatus, OrderNo: "O1", Status: "GOT_RESOURCE", Timestamp: t0,
		Profiles: []event.ProfileRef{{ICCID: "1", Status: "GOT_RESOURCE"}}}
	tests := []struct {
		name         string
		events       []timedEvent
		status, prev string
		orderedBy    string
	}{
		{"same instant: previousStatus chain", []timedEvent{{order, t0}, {profile("GOT_RESOURCE", "ACTIVATED", 0), t0}}, "ACTIVATED", "GOT_RESOURCE", merge.OrderedByChain},
		{"same instant: a longer chain", []timedEvent{{profile("ACTIVATED", "SUSPENDED", 0), t0}, {order, t0}, {profile("GOT_RESOURCE", "ACTIVATED", 0), t0}}, "SUSPENDED", "ACTIVATED", merge.OrderedByChain},
		{"provider sequence before time", []timedEvent{{profile("IN_USE", "SUSPENDED", 7), t0.Add(time.Hour)}, {profile("SUSPENDED", "IN_USE", 8), t0}}, "IN_USE", "SUSPENDED", merge.OrderedByProvider},
		{"event time", []timedEvent{{profile("", "SUSPENDED", 0), t0}, {profile("", "IN_USE", 0), t0.Add(time.Second)}}, "IN_USE", "SUSPENDED", merge.OrderedByProvider},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var want string
			permutations(len(tt.events), func(order []int) {
				st := newMemState()
				for _, i := range order {
					te := tt.events[i]
					if _, err := merge.Apply(context.Background(), st, te.ev, te.at); err != nil {
						t.Fatal(err)
					}
				}
				var p store.Profile
				if err := json.Unmarshal(st.profiles["1"], &p); err != nil {
					t.Fatal(err)
				}
				if p.Status != tt.status || p.PreviousStatus != tt.prev || p.OrderedBy != tt.orderedBy {
					t.Errorf("order %v: status %s (previous %s, ordered by %q), want %s (previous %s, ordered by %q)",
						order, p.Status, p.PreviousStatus, p.OrderedBy, tt.status, tt.prev, tt.orderedBy)
				}
				if got := dump(st); want == "" {
					want = got
				} else if got != want {
					t.Errorf("order %v: state differs\n got %s\nwant %s", order, got, want)
				}
			})
		})
	}
}

// TestBundlesOrderIndependent (issue 14, case 3): a top-up (total grows) and
// a bundle bought again (usage falls back after a report of exhaustion)
// start new bundles, whatever order the reports are merged in; figures only
// move forward within a bundle.
func TestBundlesOrderIndependent(t *testing.T) {
	t0 := time.Date(2024, 1, 15, 12, 0, 0, 0, time.UTC)
	usage := func(used, total int64, pct float64) event.Event {
		return event.Event{Type: event.DataUsage, ICCID: "1", UsedVolume: used, TotalVolume: total, UsagePercent: pct, HasUsage: true}
	}
	evs := []timedEvent{
		{usage(500, 1000, 50), t0},
		{usage(1000, 1000, 100), t0.Add(time.Hour)},
		{usage(1200, 3000, 40), t0.Add(2 * time.Hour)}, // top-up: 3 GB
		{usage(2550, 3000, 85), t0.Add(3 * time.Hour)},
		{usage(3000, 3000, 100), t0.Add(4 * time.Hour)},
		{usage(300, 3000, 10), t0.Add(5 * time.Hour)}, // bought again
	}
	var want string
	permutations(len(evs), func(order []int) {
		p := store.Profile{ICCID: "1"}
		for _, i := range order {
			merge.Profile(&p, evs[i].ev, evs[i].at)
		}
		got := mustJSON(t, p)
		if want == "" {
			want = got
			if p.Bundle != "3000.2" || len(p.Bundles) != 3 || p.UsagePercent != 10 || p.Bundles[1].Percent != 100 || p.Bundles[1].Total != 3000 {
				t.Fatalf("bundles %+v (current %s at %v%%)", p.Bundles, p.Bundle, p.UsagePercent)
			}
			for i, ev := range evs {
				id, cur := merge.BundleOf(p, ev.ev, ev.at)
				wantID := []string{"1000", "1000", "3000", "3000", "3000", "3000.2"}[i]
				if id != wantID || cur != (wantID == "3000.2") || merge.StartsBundle(p, ev.ev, ev.at) != (i == 2 || i == 5) {
					t.Errorf("report %d: bundle %s (current %v), want %s", i, id, cur, wantID)
				}
			}
		} else if got != want {
			t.Fatalf("order %v: state differs\n got %s\nwant %s", order, got, want)
		}
	})
}

// TestCopiesFoldToTheSmallestSequence (issue 19, the timeline): the copies
// of a timed event stored more than once, and their redeliveries, merged in
// any order, leave one transition and one usage report with the smallest
// stream sequence, that copy's key and arrival, and the others as copies.
func TestCopiesFoldToTheSmallestSequence(t *testing.T) {
	t0 := time.Date(2024, 1, 15, 12, 0, 0, 0, time.UTC)
	copyOf := func(ev event.Event, seq uint64) timedEvent {
		ev.Seq, ev.Key, ev.ReceivedAt = seq, "e:k", t0.Add(time.Duration(seq)*time.Minute)
		return timedEvent{ev, t0}
	}
	status := event.Event{Type: event.ProfileStatus, ICCID: "1", Status: "ACTIVATED", Timestamp: t0}
	usage := event.Event{Type: event.DataUsage, ICCID: "1", UsedVolume: 500, TotalVolume: 1000, UsagePercent: 50, HasUsage: true, Timestamp: t0}
	evs := []timedEvent{copyOf(status, 7), copyOf(status, 3), copyOf(status, 9), copyOf(status, 3), copyOf(usage, 8), copyOf(usage, 4)}
	want := store.Stored{Seq: 3, DedupeKey: "e:k", ReceivedAt: t0.Add(3 * time.Minute), Copies: []uint64{7, 9}}
	wantUsage := store.Stored{Seq: 4, DedupeKey: "e:k", ReceivedAt: t0.Add(4 * time.Minute), Copies: []uint64{8}}
	permutations(len(evs), func(order []int) {
		p := store.Profile{ICCID: "1"}
		for _, i := range order {
			merge.Profile(&p, evs[i].ev, evs[i].at)
		}
		if len(p.History) != 1 || len(p.Usage) != 1 {
			t.Fatalf("order %v: history %+v usage %+v, want one of each", order, p.History, p.Usage)
		}
		if got := p.History[0].Stored; mustJSON(t, got) != mustJSON(t, want) {
			t.Errorf("order %v: transition stored %+v, want %+v", order, got, want)
		}
		if got := p.Usage[0].Stored; mustJSON(t, got) != mustJSON(t, wantUsage) {
			t.Errorf("order %v: report stored %+v, want %+v", order, got, wantUsage)
		}
	})
}

// TestCopiesBounded: an event stored many times keeps its smallest sequence
// and the next store.CopyLimit, whatever order they came in.
func TestCopiesBounded(t *testing.T) {
	t0 := time.Date(2024, 1, 15, 12, 0, 0, 0, time.UTC)
	p := store.Profile{ICCID: "1"}
	for seq := uint64(30); seq >= 10; seq-- {
		ev := event.Event{Type: event.ProfileStatus, ICCID: "1", Status: "ACTIVATED", Timestamp: t0, Seq: seq}
		merge.Profile(&p, ev, t0)
	}
	want := []uint64{11, 12, 13, 14, 15, 16, 17, 18}
	if h := p.History; len(h) != 1 || h[0].Seq != 10 || !slices.Equal(h[0].Copies, want) || h[0].Duplicates() != store.CopyLimit {
		t.Errorf("history %+v, want seq 10 with copies %v", h, want)
	}
}
