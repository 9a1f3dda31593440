package processor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/esimflow/esimflow/shared/httpjson"
	"github.com/esimflow/esimflow/shared/stream"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// DeadLetter is one entry of ESIM_DLQ as the API shows it.
type DeadLetter struct {
	Seq             uint64    `json:"seq"`    // in ESIM_DLQ: the id the API and CLI use
	Source          string    `json:"source"` // events (from the processor) or notify (from the notifier)
	OriginalSubject string    `json:"originalSubject"`
	OriginalSeq     uint64    `json:"originalSeq,omitempty"`
	Deliveries      uint64    `json:"deliveries,omitempty"`
	Error           string    `json:"error"`
	DedupeKey       string    `json:"dedupeKey,omitempty"`
	DeadAt          time.Time `json:"deadAt"`
	// Headers and Body only in GET /v1/dlq/{seq}.
	Headers map[string][]string `json:"headers,omitempty"`
	Body    json.RawMessage     `json:"body,omitempty"`
	BodyRaw string              `json:"bodyRaw,omitempty"` // a body that is not JSON, as text
}

// Redriven is the answer to a re-drive.
type Redriven struct {
	Seq       uint64 `json:"seq"`       // the dead letter, now deleted
	Stream    string `json:"stream"`    // where the event went back
	StreamSeq uint64 `json:"streamSeq"` // its new sequence there
	// Duplicate means JetStream already held the re-published copy (an
	// earlier re-drive that did not get to delete the dead letter).
	Duplicate bool `json:"duplicate,omitempty"`
}

// errNoDeadLetter answers 404.
var errNoDeadLetter = errors.New("dead letter not found")

// errInWindow answers 409: the original is still inside the duplicate
// window, so JetStream would drop the re-published copy.
var errInWindow = errors.New("the original event is still inside the stream's duplicate window; re-drive it in a few minutes")

const (
	listDefault = 50
	listMax     = 1000
)

func (x api) dlqSubject(source string) (string, error) {
	switch source {
	case "":
		return x.names.DLQSubject("*"), nil
	case "events", "notify":
		return x.names.DLQSubject(source), nil
	}
	return "", fmt.Errorf("source %q: want events or notify", source)
}

func (x api) dlq(ctx context.Context) (jetstream.Stream, error) {
	s, err := x.streams.Stream(ctx, x.names.Stream(stream.DLQ))
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", x.names.Stream(stream.DLQ), err)
	}
	return s, nil
}

// listDeadLetters: GET /v1/dlq?source=events|notify&after=SEQ&limit=N, oldest
// first; "next" is the after= of the following page (0 at the end).
func (x api) listDeadLetters(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	subj, err := x.dlqSubject(q.Get("source"))
	if err != nil {
		httpjson.Error(w, http.StatusBadRequest, err.Error())
		return
	}
	after, err1 := uintParam(q.Get("after"), 0)
	limit, err2 := uintParam(q.Get("limit"), listDefault)
	if err := errors.Join(err1, err2); err != nil || limit == 0 {
		httpjson.Error(w, http.StatusBadRequest, "after and limit: want positive integers")
		return
	}
	limit = min(limit, listMax)
	s, err := x.dlq(r.Context())
	if err != nil {
		httpjson.Error(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	out := []DeadLetter{}
	next := after + 1
	for uint64(len(out)) < limit {
		m, err := s.GetMsg(r.Context(), next, jetstream.WithGetMsgSubject(subj))
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			next = 0
			break
		}
		if err != nil {
			httpjson.Error(w, http.StatusServiceUnavailable, "read "+x.names.Stream(stream.DLQ)+": "+err.Error())
			return
		}
		out = append(out, x.deadLetter(m, false))
		next = m.Sequence + 1
	}
	resp := map[string]any{"deadLetters": out, "next": uint64(0)}
	if next != 0 {
		resp["next"] = next - 1
	}
	httpjson.Write(w, http.StatusOK, resp)
}

func (x api) showDeadLetter(w http.ResponseWriter, r *http.Request) {
	m, ok := x.getDeadLetter(w, r)
	if ok {
		httpjson.Write(w, http.StatusOK, x.deadLetter(m, true))
	}
}

// getDeadLetter reads the {seq} of the path, answering the error itself.
func (x api) getDeadLetter(w http.ResponseWriter, r *http.Request) (*jetstream.RawStreamMsg, bool) {
	seq, err := strconv.ParseUint(r.PathValue("seq"), 10, 64)
	if err != nil || seq == 0 {
		httpjson.Error(w, http.StatusBadRequest, "seq: want a positive integer")
		return nil, false
	}
	s, err := x.dlq(r.Context())
	if err != nil {
		httpjson.Error(w, http.StatusServiceUnavailable, err.Error())
		return nil, false
	}
	m, err := s.GetMsg(r.Context(), seq)
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
		httpjson.Error(w, http.StatusNotFound, errNoDeadLetter.Error())
		return nil, false
	case err != nil:
		httpjson.Error(w, http.StatusServiceUnavailable, "read "+x.names.Stream(stream.DLQ)+": "+err.Error())
		return nil, false
	}
	return m, true
}

func (x api) deadLetter(m *jetstream.RawStreamMsg, full bool) DeadLetter {
	d := DeadLetter{
		Seq:             m.Sequence,
		Source:          m.Subject[strings.LastIndexByte(m.Subject, '.')+1:],
		OriginalSubject: m.Header.Get(stream.HeaderSubject),
		Error:           m.Header.Get(stream.HeaderError),
		DedupeKey:       m.Header.Get(stream.HeaderDedupeKey),
		DeadAt:          m.Time.UTC(),
	}
	d.OriginalSeq, _ = strconv.ParseUint(m.Header.Get(stream.HeaderSequence), 10, 64)
	d.Deliveries, _ = strconv.ParseUint(m.Header.Get(stream.HeaderDeliveries), 10, 64)
	if full {
		d.Headers = m.Header
		if json.Valid(m.Data) {
			d.Body = m.Data
		} else {
			d.BodyRaw = string(m.Data)
		}
	}
	return d
}

// redriveDeadLetter publishes the dead letter back to its original subject,
// with its original headers and dedupe key as Nats-Msg-Id, then deletes it.
func (x api) redriveDeadLetter(w http.ResponseWriter, r *http.Request) {
	m, ok := x.getDeadLetter(w, r)
	if !ok {
		return
	}
	res, err := x.redrive(r.Context(), m)
	switch {
	case errors.Is(err, errInWindow):
		httpjson.Error(w, http.StatusConflict, err.Error())
	case err != nil:
		httpjson.Error(w, http.StatusServiceUnavailable, err.Error())
	default:
		httpjson.Write(w, http.StatusOK, res)
	}
}

func (x api) redrive(ctx context.Context, m *jetstream.RawStreamMsg) (Redriven, error) {
	subject := m.Header.Get(stream.HeaderSubject)
	if subject == "" {
		return Redriven{}, fmt.Errorf("dead letter %d names no original subject", m.Sequence)
	}
	out := nats.NewMsg(subject)
	out.Data = m.Data
	for k, v := range m.Header {
		switch {
		case strings.HasPrefix(k, "Nats-"), k == stream.HeaderError, k == stream.HeaderSubject,
			k == stream.HeaderDeliveries, k == stream.HeaderSequence, k == stream.HeaderDedupeKey:
			// JetStream's own headers, and those that describe the dead
			// letter; the key goes back as the Nats-Msg-Id.
		default:
			out.Header[k] = v
		}
	}
	var opts []jetstream.PublishOpt
	if id := redriveID(m); id != "" {
		opts = append(opts, jetstream.WithMsgID(id))
	}
	ack, err := x.pub.PublishMsg(ctx, out, opts...)
	if err != nil {
		return Redriven{}, fmt.Errorf("republish dead letter %d to %s: %w", m.Sequence, subject, err)
	}
	origSeq, _ := strconv.ParseUint(m.Header.Get(stream.HeaderSequence), 10, 64)
	if ack.Duplicate && ack.Sequence == origSeq {
		return Redriven{}, errInWindow
	}
	s, err := x.dlq(ctx)
	if err != nil {
		return Redriven{}, err
	}
	if err := s.DeleteMsg(ctx, m.Sequence); err != nil && !errors.Is(err, jetstream.ErrMsgNotFound) {
		return Redriven{}, fmt.Errorf("republished as %s %d, but delete dead letter %d: %w", ack.Stream, ack.Sequence, m.Sequence, err)
	}
	return Redriven{Seq: m.Sequence, Stream: ack.Stream, StreamSeq: ack.Sequence, Duplicate: ack.Duplicate}, nil
}

// redriveID is the Nats-Msg-Id of a re-drive. An event goes back with its
// original id, its dedupe key. An intent gets "<id>/redrive/<dead letter
// seq>": JetStream then takes it inside the duplicate window as well (the
// notifier's claims, not the window, keep it from going out twice), and a
// second re-drive of the same dead letter — one that did not get to delete
// it — is still dropped as a duplicate.
func redriveID(m *jetstream.RawStreamMsg) string {
	id := originalID(m)
	if id == "" || !strings.HasSuffix(m.Subject, ".notify") {
		return id
	}
	return id + "/redrive/" + strconv.FormatUint(m.Sequence, 10)
}

// originalID is the Nats-Msg-Id the dead letter's original was published
// with: the key the dead letter carries (an event's dedupe key, an intent's
// id), else, for a dead letter written without one, the intent id in its body.
func originalID(m *jetstream.RawStreamMsg) string {
	if k := m.Header.Get(stream.HeaderDedupeKey); k != "" {
		return k
	}
	var in struct {
		ID string `json:"id"`
	}
	if json.Unmarshal(m.Data, &in) == nil {
		return in.ID
	}
	return ""
}

func (x api) deleteDeadLetter(w http.ResponseWriter, r *http.Request) {
	m, ok := x.getDeadLetter(w, r)
	if !ok {
		return
	}
	s, err := x.dlq(r.Context())
	if err == nil {
		err = s.DeleteMsg(r.Context(), m.Sequence)
	}
	switch {
	case errors.Is(err, jetstream.ErrMsgNotFound):
		httpjson.Error(w, http.StatusNotFound, errNoDeadLetter.Error())
	case err != nil:
		httpjson.Error(w, http.StatusServiceUnavailable, "delete dead letter: "+err.Error())
	default:
		httpjson.Write(w, http.StatusOK, map[string]any{"deleted": m.Sequence})
	}
}

// purgeDeadLetters: DELETE /v1/dlq?source=events|notify removes every dead
// letter (of the source).
func (x api) purgeDeadLetters(w http.ResponseWriter, r *http.Request) {
	subj, err := x.dlqSubject(r.URL.Query().Get("source"))
	if err != nil {
		httpjson.Error(w, http.StatusBadRequest, err.Error())
		return
	}
	s, err := x.dlq(r.Context())
	if err != nil {
		httpjson.Error(w, http.StatusServiceUnavailable, err.Error())
		return
	}
	info, err := s.Info(r.Context(), jetstream.WithSubjectFilter(subj))
	if err == nil {
		err = s.Purge(r.Context(), jetstream.WithPurgeSubject(subj))
	}
	if err != nil {
		httpjson.Error(w, http.StatusServiceUnavailable, "purge "+subj+": "+err.Error())
		return
	}
	var n uint64
	for _, c := range info.State.Subjects {
		n += c
	}
	httpjson.Write(w, http.StatusOK, map[string]any{"purged": n})
}

func uintParam(s string, def uint64) (uint64, error) {
	if s == "" {
		return def, nil
	}
	return strconv.ParseUint(s, 10, 64)
}
