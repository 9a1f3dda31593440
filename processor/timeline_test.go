package processor_test

import (
	"slices"
	"testing"

	"github.com/esimflow/esimflow/processor"
	"github.com/esimflow/esimflow/shared/event"
	"github.com/esimflow/esimflow/shared/store"
	"github.com/esimflow/esimflow/shared/stream"
)

// TestTimelineRecordsStoredEvents (issue 19, the eSIM's timeline): each
// transition and usage report records the event behind it — its
// ESIM_EVENTS sequence (the raw body's address), dedupe key and arrival —
// and a timed event stored again (a provider's retry after the duplicate
// window) is one event with its smallest sequence and its copies counted,
// asking for no message again; an untimed repeat is an event of its own.
// Both stores, one at a time and batched.
func TestTimelineRecordsStoredEvents(t *testing.T) {
	onBothStores(t, func(t *testing.T, r *rig, st processor.Store) {
		timed := `{"eventType":"PROFILE_STATUS","iccid":"8911","previousStatus":"GOT_RESOURCE","currentStatus":"ACTIVATED","timestamp":"2024-01-15T12:00:00Z"}`
		usage := `{"eventType":"DATA_USAGE","iccid":"8911","usedVolume":850,"totalVolume":1000,"timestamp":"2024-01-15T13:00:00Z"}`
		untimed := `{"eventType":"PROFILE_STATUS","iccid":"8911","previousStatus":"ACTIVATED","currentStatus":"SUSPENDED"}`
		play(t, r, timed, usage, untimed)
		intents := intentIDs(t, r)
		playCopies(t, r, timed, usage, timed, untimed)

		// Where each body is in the stream, as the processor reads it.
		byBody := map[string][]store.Stored{}
		for _, m := range r.streamMsgs(t, stream.Events) {
			ev, err := event.Decode(m.Data)
			key := processor.Stamp(&ev, m.Header, err, m.Data, m.Sequence)
			if ev.ReceivedAt.IsZero() || key == "" {
				t.Fatalf("stream message %d: no arrival or key", m.Sequence)
			}
			byBody[string(m.Data)] = append(byBody[string(m.Data)], store.Stored{Seq: m.Sequence, DedupeKey: key, ReceivedAt: ev.ReceivedAt})
		}
		first := func(body string, copies ...uint64) store.Stored {
			s := byBody[body][0]
			s.Copies = copies
			return s
		}
		p := profileOf(t, st, "8911")
		if len(p.History) != 3 || len(p.Usage) != 1 {
			t.Fatalf("history %+v usage %+v: want 3 transitions (the untimed repeat its own) and 1 report", p.History, p.Usage)
		}
		tc := byBody[timed]
		want := map[string]store.Stored{
			"ACTIVATED": first(timed, tc[1].Seq, tc[2].Seq),
		}
		for _, h := range p.History {
			switch h.Status {
			case "ACTIVATED":
				if !sameStored(h.Stored, want["ACTIVATED"]) || h.Duplicates() != 2 {
					t.Errorf("ACTIVATED stored %+v, want %+v (2 duplicates)", h.Stored, want["ACTIVATED"])
				}
			case "SUSPENDED":
				if !h.Arrival || h.Duplicates() != 0 || !slices.ContainsFunc(byBody[untimed], func(s store.Stored) bool { return sameStored(s, h.Stored) }) {
					t.Errorf("untimed SUSPENDED stored %+v, want one of %+v each its own", h.Stored, byBody[untimed])
				}
			}
		}
		if u := p.Usage[0]; !sameStored(u.Stored, first(usage, byBody[usage][1].Seq)) {
			t.Errorf("usage report stored %+v, want %+v", u.Stored, first(usage, byBody[usage][1].Seq))
		}
		if got := intentIDs(t, r); !slices.Equal(got, intents) {
			t.Errorf("copies published intents: %v, before them %v", got, intents)
		}
	})
}

func sameStored(a, b store.Stored) bool {
	return a.Seq == b.Seq && a.DedupeKey == b.DedupeKey && a.ReceivedAt.Equal(b.ReceivedAt) && slices.Equal(a.Copies, b.Copies)
}
