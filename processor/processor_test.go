package processor_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/esimflow/esimflow/processor"
	"github.com/esimflow/esimflow/shared/admin"
	"github.com/esimflow/esimflow/shared/config"
	"github.com/esimflow/esimflow/shared/dedupe"
	"github.com/esimflow/esimflow/shared/event"
	"github.com/esimflow/esimflow/shared/intent"
	"github.com/esimflow/esimflow/shared/natstest"
	"github.com/esimflow/esimflow/shared/store"
	"github.com/esimflow/esimflow/shared/store/kvstore"
	"github.com/esimflow/esimflow/shared/stream"
	"github.com/esimflow/esimflow/shared/testns"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

type rig struct {
	js    jetstream.JetStream
	names stream.Names
	store *kvstore.Store
}

// failingIntents fails the first n intent publishes, as a NATS outage would.
type failingIntents struct {
	processor.Publisher
	left atomic.Int32
}

func (f *failingIntents) PublishMsg(ctx context.Context, m *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	if strings.Contains(m.Subject, "esim.notify.") && f.left.Add(-1) >= 0 {
		return nil, errors.New("injected: nats timeout")
	}
	return f.Publisher.PublishMsg(ctx, m, opts...)
}

func startProcessor(t *testing.T, wrap func(processor.Publisher) processor.Publisher) rig {
	t.Helper()
	srv := natstest.StartEmbedded(t)
	js, err := jetstream.New(srv.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	ns := testns.New(t)
	cfg, err := config.Load(func(k string) string {
		return map[string]string{"ESIMFLOW_NAMESPACE": ns, "ESIMFLOW_MAX_DELIVER": "6"}[k]
	})
	if err != nil {
		t.Fatal(err)
	}
	names := stream.NewNames(ns)
	ctx, cancel := context.WithCancel(context.Background())
	cons, _, err := stream.Ensure(ctx, js, names, stream.Limits{Replicas: 1, EventsMaxBytes: -1, MaxDeliver: cfg.MaxDeliver})
	if err != nil {
		t.Fatal(err)
	}
	st, err := kvstore.New(ctx, js, kvstore.Options{Namespace: ns, SeenTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	var pub processor.Publisher = js
	if wrap != nil {
		pub = wrap(js)
	}
	done := make(chan error, 1)
	go func() {
		done <- processor.Run(ctx, cfg, processor.Deps{Consumer: cons, Publisher: pub, Store: st, Admin: admin.New(""), Logger: log})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("processor.Run: %v", err)
		}
	})
	return rig{js: js, names: names, store: st}
}

// publish stores a body as ingest does.
func (r rig) publish(t *testing.T, body string) {
	t.Helper()
	ev, err := event.Decode([]byte(body))
	key := dedupe.Key(ev, err, []byte(body))
	m := nats.NewMsg(r.names.EventSubject(ev.Type))
	m.Data = []byte(body)
	m.Header.Set(stream.HeaderDedupeKey, key)
	m.Header.Set(stream.HeaderReceivedAt, time.Now().UTC().Format(time.RFC3339Nano))
	if _, err := r.js.PublishMsg(context.Background(), m, jetstream.WithMsgID(key)); err != nil {
		t.Fatal(err)
	}
}

func (r rig) streamMsgs(t *testing.T, name string) []*jetstream.RawStreamMsg {
	t.Helper()
	s, err := r.js.Stream(context.Background(), r.names.Stream(name))
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []*jetstream.RawStreamMsg
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		if m, err := s.GetMsg(context.Background(), seq); err == nil {
			out = append(out, m)
		}
	}
	return out
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestAckLast: when the intent cannot be published the event is not acked nor
// marked seen, so its redelivery publishes it (invariant 4). Marking it seen
// first would lose the customer's activation message for good.
func TestAckLast(t *testing.T) {
	fail := &failingIntents{}
	fail.left.Store(2)
	r := startProcessor(t, func(p processor.Publisher) processor.Publisher { fail.Publisher = p; return fail })
	body := `{"eventType":"PROFILE_STATUS","iccid":"8901","currentStatus":"ACTIVATED","timestamp":"2024-01-15T14:00:00Z"}`
	r.publish(t, body)
	waitFor(t, "the activation intent", func() bool { return len(r.streamMsgs(t, stream.Notify)) == 1 })
	var in intent.Intent
	if err := json.Unmarshal(r.streamMsgs(t, stream.Notify)[0].Data, &in); err != nil || in.ID != "activation:8901" {
		t.Fatalf("intent %+v (%v)", in, err)
	}
	if fail.left.Load() > 0 {
		t.Errorf("the injected failures were not hit")
	}
	ev, err := event.Decode([]byte(body))
	waitFor(t, "the seen mark", func() bool {
		seen, _ := r.store.Seen(context.Background(), dedupe.Key(ev, err, []byte(body)))
		return seen
	})
}

// TestPoisonEventDeadLettered: a malformed event among good ones goes to
// ESIM_DLQ once, with the error, subject and delivery count; the good ones are
// all processed.
func TestPoisonEventDeadLettered(t *testing.T) {
	r := startProcessor(t, nil)
	r.publish(t, `{"eventType":"PROFILE_STATUS","iccid":"1","currentStatus":"ACTIVATED"}`)
	r.publish(t, `{"eventType":"DATA_USAGE","iccid":"1","usedVolume":"lots"}`)
	r.publish(t, `{"eventType":"PROFILE_STATUS","iccid":"2","currentStatus":"ACTIVATED"}`)
	r.publish(t, `{"eventType":"REFUND","orderNo":"O"}`) // unknown: parked, not dead
	waitFor(t, "both good events merged", func() bool {
		_, e1 := r.store.Profile(context.Background(), "1")
		_, e2 := r.store.Profile(context.Background(), "2")
		return e1 == nil && e2 == nil
	})
	waitFor(t, "one dead letter", func() bool { return len(r.streamMsgs(t, stream.DLQ)) == 1 })
	dl := r.streamMsgs(t, stream.DLQ)[0]
	if !strings.Contains(dl.Header.Get(stream.HeaderError), "usedVolume") ||
		dl.Header.Get(stream.HeaderSubject) != r.names.EventSubject(event.DataUsage) ||
		dl.Header.Get(stream.HeaderDeliveries) != "1" {
		t.Errorf("dead letter headers %v", dl.Header)
	}
	p, err := r.store.Profile(context.Background(), "1")
	if err != nil || p.UsedVolume != 0 {
		t.Errorf("poison event touched state: %+v %v", p, err)
	}
	if _, err := r.store.Order(context.Background(), "O"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown event made an order: %v", err)
	}
}
