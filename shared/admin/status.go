package admin

import (
	"context"
	"net/http"
	"time"

	"github.com/esimflow/esimflow/shared/httpjson"
	"github.com/nats-io/nats.go/jetstream"
)

// StreamGetter is the part of JetStream the status route reads.
type StreamGetter interface {
	Stream(ctx context.Context, name string) (jetstream.Stream, error)
}

// Status is what GET /v1/status answers: the streams as the NATS server
// reports them, each with its durable consumers.
type Status struct {
	Streams []StreamStatus `json:"streams"`
}

// StreamStatus is one stream's figures; Error is set instead when the server
// could not tell.
type StreamStatus struct {
	Name      string           `json:"name"`
	Messages  uint64           `json:"messages"`
	Bytes     uint64           `json:"bytes"`
	FirstSeq  uint64           `json:"firstSeq"`
	LastSeq   uint64           `json:"lastSeq"`
	Replicas  int              `json:"replicas"`
	Leader    string           `json:"leader,omitempty"`
	Consumers []ConsumerStatus `json:"consumers"`
	Error     string           `json:"error,omitempty"`
}

// ConsumerStatus is one durable consumer's progress: Pending is the lag
// (messages not yet delivered), AckPending those delivered and not yet acked.
type ConsumerStatus struct {
	Name        string `json:"name"`
	Pending     uint64 `json:"pending"`
	AckPending  int    `json:"ackPending"`
	Redelivered int    `json:"redelivered"`
	Waiting     int    `json:"waiting"`
	Delivered   uint64 `json:"delivered"`
	AckFloor    uint64 `json:"ackFloor"`
}

// ServeStatus registers GET /v1/status over the named streams, for the
// operator CLI. It is read-only and behind the API token like every route.
func (s *Server) ServeStatus(js StreamGetter, streams ...string) {
	s.Handle("GET /v1/status", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		out := Status{Streams: make([]StreamStatus, 0, len(streams))}
		for _, name := range streams {
			out.Streams = append(out.Streams, streamStatus(ctx, js, name))
		}
		httpjson.Write(w, http.StatusOK, out)
	}))
}

func streamStatus(ctx context.Context, js StreamGetter, name string) StreamStatus {
	st := StreamStatus{Name: name, Consumers: []ConsumerStatus{}}
	str, err := js.Stream(ctx, name)
	if err != nil {
		st.Error = err.Error()
		return st
	}
	info, err := str.Info(ctx)
	if err != nil {
		st.Error = err.Error()
		return st
	}
	st.Messages, st.Bytes = info.State.Msgs, info.State.Bytes
	st.FirstSeq, st.LastSeq = info.State.FirstSeq, info.State.LastSeq
	st.Replicas = info.Config.Replicas
	if info.Cluster != nil {
		st.Leader = info.Cluster.Leader
	}
	list := str.ListConsumers(ctx)
	for ci := range list.Info() {
		st.Consumers = append(st.Consumers, ConsumerStatus{
			Name:        ci.Name,
			Pending:     ci.NumPending,
			AckPending:  ci.NumAckPending,
			Redelivered: ci.NumRedelivered,
			Waiting:     ci.NumWaiting,
			Delivered:   ci.Delivered.Stream,
			AckFloor:    ci.AckFloor.Stream,
		})
	}
	if err := list.Err(); err != nil {
		st.Error = err.Error()
	}
	return st
}
