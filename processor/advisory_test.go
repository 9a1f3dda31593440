package processor_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/esimflow/esimflow/processor"
	"github.com/esimflow/esimflow/shared/dedupe"
	"github.com/esimflow/esimflow/shared/event"
	"github.com/esimflow/esimflow/shared/poll"
	"github.com/esimflow/esimflow/shared/stream"
	"github.com/nats-io/nats.go/jetstream"
)

// TestMaxDeliveriesAdvisory: an event whose last delivery is never acked —
// the instance holding it died — gets its dead letter from the advisory
// listener of another instance, once however often the advisory comes, and
// none when the event was in fact applied (marked seen) before the crash.
func TestMaxDeliveriesAdvisory(t *testing.T) {
	for _, tc := range []struct {
		name     string
		external bool
	}{{"embedded nats", false}, {"nats 2.9 external", true}} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, rigOpts{external: tc.external, maxDeliver: 2})
			ctx := context.Background()
			// The instance under test pulls from an idle durable, so that the
			// "dying" instance below is the only one the real consumer delivers to.
			idle := r.names.Consumer("idle")
			if _, err := r.js.CreateOrUpdateConsumer(ctx, r.names.Stream(stream.Events), jetstream.ConsumerConfig{
				Durable: idle, AckPolicy: jetstream.AckExplicitPolicy, FilterSubject: r.names.EventSubject("NONE"),
			}); err != nil {
				t.Fatal(err)
			}
			// Short AckWait: the dying instance's hold expires in a second.
			cfg := r.names.ConsumerConfig(stream.ProcessorConsumer, r.limits())
			cfg.AckWait = time.Second
			cons, err := r.js.CreateOrUpdateConsumer(ctx, r.names.Stream(stream.Events), cfg)
			if err != nil {
				t.Fatal(err)
			}
			st := r.kvStore(t)
			in := r.start(t, st, instOpts{consumer: idle})

			lost := `{"eventType":"PROFILE_STATUS","iccid":"8912","currentStatus":"ACTIVATED","timestamp":"2024-01-15T14:00:00Z"}`
			r.publish(t, lost, true)
			// Deliveries 1 and 2 (the last) are taken and never acked.
			for delivery := 1; delivery <= 2; {
				b, err := cons.Fetch(1, jetstream.FetchMaxWait(2*time.Second))
				if err != nil {
					t.Fatal(err)
				}
				for m := range b.Messages() {
					meta, _ := m.Metadata()
					if int(meta.NumDelivered) != delivery {
						t.Fatalf("delivery %d, want %d", meta.NumDelivered, delivery)
					}
					delivery++
				}
			}
			// Another pull makes the server notice the exhausted event.
			poll.Until(t, "the dead letter", func() bool {
				if b, err := cons.Fetch(1, jetstream.FetchMaxWait(200*time.Millisecond)); err == nil {
					for range b.Messages() {
						t.Fatal("delivered past MaxDeliver")
					}
				}
				return len(r.streamMsgs(t, stream.DLQ)) == 1
			})
			dl := r.streamMsgs(t, stream.DLQ)[0]
			if dl.Header.Get(stream.HeaderSequence) != "1" || !strings.Contains(dl.Header.Get(stream.HeaderError), "max deliveries") ||
				dl.Header.Get(stream.HeaderSubject) != r.names.EventSubject(event.ProfileStatus) || string(dl.Data) != lost {
				t.Errorf("dead letter %v %s", dl.Header, dl.Data)
			}

			// The advisory again (a second server notice): still one dead letter.
			advise := func(seq uint64) {
				b, _ := json.Marshal(map[string]any{"type": "io.nats.jetstream.advisory.v1.max_deliver", "stream": r.names.Stream(stream.Events),
					"consumer": r.names.Consumer(stream.ProcessorConsumer), "stream_seq": seq, "deliveries": 2})
				if err := in.nc.Publish(processor.MaxDeliveriesSubject(r.names), b); err != nil {
					t.Fatal(err)
				}
			}
			advise(1)
			poll.Until(t, "the second advisory handled", func() bool { return deadLettered(in) == 2 })

			// An event applied before its instance died: no dead letter.
			applied := `{"eventType":"PROFILE_STATUS","iccid":"8901","currentStatus":"ACTIVATED","timestamp":"2024-01-15T14:00:00Z"}`
			r.publish(t, applied, true) // seq 2
			ev, derr := event.Decode([]byte(applied))
			if err := st.MarkSeen(ctx, dedupe.Key(ev, derr, []byte(applied))); err != nil {
				t.Fatal(err)
			}
			r.publish(t, `{"eventType":"PROFILE_STATUS","iccid":"8902","currentStatus":"ACTIVATED"}`, true) // seq 3
			advise(2)
			advise(3) // handled after 2: the listener takes advisories one at a time
			poll.Until(t, "the third dead letter written", func() bool { return deadLettered(in) == 3 })
			var seqs []string
			for _, m := range r.streamMsgs(t, stream.DLQ) {
				seqs = append(seqs, m.Header.Get(stream.HeaderSequence))
			}
			if fmt.Sprint(seqs) != "[1 3]" {
				t.Errorf("dead letters of events %v, want [1 3]", seqs)
			}
		})
	}
}

// deadLettered counts dead letters the instance published (JetStream keeps
// one per id).
func deadLettered(in *instance) int {
	mfs, _ := in.admin.Gatherer().Gather()
	for _, mf := range mfs {
		if mf.GetName() == "esimflow_events_dead_lettered_total" {
			return int(mf.GetMetric()[0].GetCounter().GetValue())
		}
	}
	return 0
}
