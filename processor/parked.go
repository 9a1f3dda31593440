package processor

import (
	"net/http"
	"slices"
	"sync"

	"github.com/esimflow/esimflow/shared/event"
	"github.com/esimflow/esimflow/shared/httpjson"
	"github.com/esimflow/esimflow/shared/stream"
	"github.com/nats-io/nats.go/jetstream"
)

// parkedKeep is how many sequences of parked events are kept per type.
const parkedKeep = 10

// parkedLog remembers what this instance parked: how many events of each
// type, and the stream sequences of the last few. The events themselves stay
// in ESIM_EVENTS.
type parkedLog struct {
	mu     sync.Mutex
	counts map[event.Type]uint64
	last   map[event.Type][]uint64 // newest first
}

func newParkedLog() *parkedLog {
	return &parkedLog{counts: map[event.Type]uint64{}, last: map[event.Type][]uint64{}}
}

func (p *parkedLog) add(t event.Type, seq uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.counts[t]++
	last := slices.Insert(p.last[t], 0, seq)
	p.last[t] = last[:min(len(last), parkedKeep)]
}

// snapshot returns the counts and last sequences by type.
func (p *parkedLog) snapshot() (map[event.Type]uint64, map[event.Type][]uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	counts := make(map[event.Type]uint64, len(p.counts))
	last := make(map[event.Type][]uint64, len(p.last))
	for t, n := range p.counts {
		counts[t] = n
		last[t] = slices.Clone(p.last[t])
	}
	return counts, last
}

// ParkedType is one parked type in GET /v1/parked.
type ParkedType struct {
	Type string `json:"type"` // unknown, check_health, operator_alert
	// InStream counts the events of the type kept in ESIM_EVENTS, whichever
	// instance parked them.
	InStream uint64 `json:"inStream"`
	// ParkedHere counts those this instance parked since it started, and
	// LastSeqs are their ESIM_EVENTS sequences, newest first.
	ParkedHere uint64   `json:"parkedHere"`
	LastSeqs   []uint64 `json:"lastSeqs"`
}

// parkedTypes are the types the processor parks instead of merging.
var parkedTypes = []event.Type{event.Unknown, event.CheckHealth, event.OperatorAlert}

func (x api) listParked(w http.ResponseWriter, r *http.Request) {
	counts, last := x.parked.snapshot()
	s, err := x.streams.Stream(r.Context(), x.names.Stream(stream.Events))
	if err != nil {
		httpjson.Error(w, http.StatusServiceUnavailable, "read "+x.names.Stream(stream.Events)+": "+err.Error())
		return
	}
	out := []ParkedType{}
	for _, t := range parkedTypes {
		subj := x.names.EventSubject(t)
		info, err := s.Info(r.Context(), jetstream.WithSubjectFilter(subj))
		if err != nil {
			httpjson.Error(w, http.StatusServiceUnavailable, "read "+x.names.Stream(stream.Events)+": "+err.Error())
			return
		}
		seqs := last[t]
		if seqs == nil {
			seqs = []uint64{}
		}
		out = append(out, ParkedType{Type: t.Token(), InStream: info.State.Subjects[subj], ParkedHere: counts[t], LastSeqs: seqs})
	}
	httpjson.Write(w, http.StatusOK, map[string]any{"parked": out})
}
