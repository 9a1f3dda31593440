package admin_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/esimflow/esimflow/shared/admin"
	"github.com/esimflow/esimflow/shared/natstest"
	"github.com/esimflow/esimflow/shared/stream"
	"github.com/esimflow/esimflow/shared/testns"
	"github.com/nats-io/nats.go/jetstream"
)

// TestStatus reads the streams and consumers of a real server through
// GET /v1/status: counts, lag, ack pending and redeliveries as JetStream
// reports them, and an error for a stream that does not exist.
func TestStatus(t *testing.T) {
	srv := natstest.Start(t)
	ns := testns.New(t)
	srv.RemoveNamespace(t, ns)
	js, err := jetstream.New(srv.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	names := stream.NewNames(ns)
	events, _, err := stream.Ensure(ctx, js, names, stream.Limits{Replicas: 1, EventsMaxBytes: -1, MaxDeliver: 5})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if _, err := js.Publish(ctx, names.EventSubject("ORDER_STATUS"), fmt.Appendf(nil, `{"n":%d}`, i)); err != nil {
			t.Fatal(err)
		}
	}
	// One message delivered and not acked: ack pending 1, lag 2.
	batch, err := events.Fetch(1, jetstream.FetchMaxWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	for range batch.Messages() {
	}

	s := admin.New("tok")
	s.ServeStatus(js, names.Stream(stream.Events), names.Stream(stream.DLQ), names.Stream("NOPE"))
	if w := get(t, s.Handler(), "/v1/status", ""); w.Code != 401 {
		t.Errorf("without the token: %d", w.Code)
	}
	w := get(t, s.Handler(), "/v1/status", "Bearer tok")
	if w.Code != 200 {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	var got admin.Status
	if err := json.Unmarshal(w.Body.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Streams) != 3 {
		t.Fatalf("streams: %+v", got.Streams)
	}
	ev, dlq, nope := got.Streams[0], got.Streams[1], got.Streams[2]
	if ev.Name != ns+"_ESIM_EVENTS" || ev.Messages != 3 || ev.LastSeq != 3 || ev.Replicas != 1 || ev.Error != "" {
		t.Errorf("events stream: %+v", ev)
	}
	if len(ev.Consumers) != 1 {
		t.Fatalf("events consumers: %+v", ev.Consumers)
	}
	if c := ev.Consumers[0]; c.Name != ns+"_processor" || c.Pending != 2 || c.AckPending != 1 || c.Delivered != 1 {
		t.Errorf("processor consumer: %+v", c)
	}
	if dlq.Messages != 0 || len(dlq.Consumers) != 0 || dlq.Error != "" {
		t.Errorf("dlq: %+v", dlq)
	}
	if nope.Error == "" {
		t.Errorf("a missing stream should carry an error: %+v", nope)
	}
}
