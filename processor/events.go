package processor

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/esimflow/esimflow/shared/httpjson"
	"github.com/esimflow/esimflow/shared/stream"
	"github.com/nats-io/nats.go/jetstream"
)

// StoredEvent is one message of ESIM_EVENTS as the provider sent it: what
// GET /v1/events/{seq} answers, so an operator sees the raw body behind a
// state change or a dead letter.
type StoredEvent struct {
	Seq        uint64              `json:"seq"`
	Subject    string              `json:"subject"`
	ReceivedAt time.Time           `json:"receivedAt"`
	Headers    map[string][]string `json:"headers,omitempty"`
	Body       json.RawMessage     `json:"body,omitempty"`
	BodyRaw    string              `json:"bodyRaw,omitempty"` // a body that is not JSON, as text
}

// showEvent reads ESIM_EVENTS at {seq}; 404 once the stream's limits have
// removed it.
func (x api) showEvent(w http.ResponseWriter, r *http.Request) {
	seq, err := strconv.ParseUint(r.PathValue("seq"), 10, 64)
	if err != nil || seq == 0 {
		httpjson.Error(w, http.StatusBadRequest, "seq: want a positive integer")
		return
	}
	name := x.names.Stream(stream.Events)
	s, err := x.streams.Stream(r.Context(), name)
	if err != nil {
		httpjson.Error(w, http.StatusServiceUnavailable, "stream "+name+": "+err.Error())
		return
	}
	m, err := s.GetMsg(r.Context(), seq)
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
		httpjson.Error(w, http.StatusNotFound, "event not found (never stored, or removed by the stream's limits)")
		return
	case err != nil:
		httpjson.Error(w, http.StatusServiceUnavailable, "read "+name+": "+err.Error())
		return
	}
	ev := StoredEvent{Seq: m.Sequence, Subject: m.Subject, ReceivedAt: m.Time.UTC(), Headers: m.Header}
	if json.Valid(m.Data) {
		ev.Body = m.Data
	} else {
		ev.BodyRaw = string(m.Data)
	}
	httpjson.Write(w, http.StatusOK, ev)
}
