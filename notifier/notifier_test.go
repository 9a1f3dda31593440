package notifier_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/esimflow/esimflow/notifier"
	"github.com/esimflow/esimflow/notifier/channel"
	"github.com/esimflow/esimflow/shared/admin"
	"github.com/esimflow/esimflow/shared/config"
	"github.com/esimflow/esimflow/shared/intent"
	"github.com/esimflow/esimflow/shared/natstest"
	"github.com/esimflow/esimflow/shared/store"
	"github.com/esimflow/esimflow/shared/store/kvstore"
	"github.com/esimflow/esimflow/shared/stream"
	"github.com/esimflow/esimflow/shared/testns"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

type sink struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *sink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

func (s *sink) count(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Count(s.buf.String(), "id="+id+" ")
}

type rig struct {
	js    jetstream.JetStream
	names stream.Names
	store *kvstore.Store
	out   *sink
}

// startNotifiers runs n notifier instances on one durable consumer and store.
func startNotifiers(t *testing.T, n int) rig {
	t.Helper()
	srv := natstest.StartEmbedded(t)
	js, err := jetstream.New(srv.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	ns := testns.New(t)
	cfg, err := config.Load(func(k string) string { return map[string]string{"ESIMFLOW_NAMESPACE": ns}[k] })
	if err != nil {
		t.Fatal(err)
	}
	names := stream.NewNames(ns)
	ctx, cancel := context.WithCancel(context.Background())
	_, cons, err := stream.Ensure(ctx, js, names, stream.Limits{Replicas: 1, EventsMaxBytes: -1, MaxDeliver: cfg.MaxDeliver})
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
	out := &sink{}
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			err := notifier.Run(ctx, cfg, notifier.Deps{Consumer: cons, Publisher: js, Store: st,
				Channels: []notifier.Channel{channel.NewConsole(out)}, Admin: admin.New(""), Logger: log, Owner: fmt.Sprintf("n%d", i)})
			if err != nil {
				t.Errorf("notifier %d: %v", i, err)
			}
		})
	}
	t.Cleanup(func() { cancel(); wg.Wait() })
	return rig{js: js, names: names, store: st, out: out}
}

// publish sends an intent. JetStream's duplicate window would drop an exact
// repeat, so repeats past the window are simulated with a distinct Msg-Id.
func (r rig) publish(t *testing.T, in intent.Intent, msgID string) {
	t.Helper()
	b, _ := json.Marshal(in)
	m := nats.NewMsg(r.names.NotifySubject(string(in.Kind)))
	m.Data = b
	if _, err := r.js.PublishMsg(context.Background(), m, jetstream.WithMsgID(msgID)); err != nil {
		t.Fatal(err)
	}
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

func (r rig) quiet(t *testing.T) {
	t.Helper()
	cons, err := r.js.Consumer(context.Background(), r.names.Stream(stream.Notify), r.names.Consumer(stream.NotifierConsumer))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "notifier consumer drained", func() bool {
		info, err := cons.Info(context.Background())
		return err == nil && info.NumPending == 0 && info.NumAckPending == 0
	})
}

// TestSentOncePerIntent: the same intent delivered many times, to three
// notifier instances at once, is sent once (invariant 5).
func TestSentOncePerIntent(t *testing.T) {
	r := startNotifiers(t, 3)
	in := intent.Intent{ID: intent.ActivationID("8901"), Kind: intent.Activation, ICCID: "8901"}
	for i := range 20 {
		r.publish(t, in, fmt.Sprintf("copy-%d", i))
	}
	r.quiet(t)
	if got := r.out.count(in.ID); got != 1 {
		t.Errorf("sent %d times, want 1", got)
	}
	st, err := r.store.ClaimState(context.Background(), in.ID)
	if err != nil || st != store.ClaimSent {
		t.Errorf("claim state %q (%v)", st, err)
	}
	log, err := r.store.Notifications(context.Background(), "8901")
	if err != nil || len(log) != 1 || log[0].Status != "sent" || log[0].Channel != "console" || log[0].SentAt.IsZero() {
		t.Errorf("log %+v (%v)", log, err)
	}
}

// TestStaleLowDataSuppressed: an 80 % warning that arrives after the 100 %
// one went out is suppressed and logged as such, not sent.
func TestStaleLowDataSuppressed(t *testing.T) {
	r := startNotifiers(t, 1)
	full := intent.Intent{ID: intent.LowDataID("8901", 100), Kind: intent.LowData, ICCID: "8901", Threshold: 100}
	warn := intent.Intent{ID: intent.LowDataID("8901", 80), Kind: intent.LowData, ICCID: "8901", Threshold: 80, SupersededBy: []string{full.ID}}
	r.publish(t, full, full.ID)
	waitFor(t, "the 100% message", func() bool { return r.out.count(full.ID) == 1 })
	r.publish(t, warn, warn.ID)
	r.quiet(t)
	if got := r.out.count(warn.ID); got != 0 {
		t.Errorf("stale 80%% warning sent %d times", got)
	}
	st, _ := r.store.ClaimState(context.Background(), warn.ID)
	if st != store.ClaimSuppressed {
		t.Errorf("claim state %q, want suppressed", st)
	}
	log, _ := r.store.Notifications(context.Background(), "8901")
	if len(log) != 2 || log[1].ID != warn.ID || log[1].Status != "suppressed" {
		t.Errorf("log %+v", log)
	}
}

// TestUndecodableIntentDeadLettered: garbage on ESIM_NOTIFY goes to the dead
// letters at once.
func TestUndecodableIntentDeadLettered(t *testing.T) {
	r := startNotifiers(t, 1)
	m := nats.NewMsg(r.names.NotifySubject("activation"))
	m.Data = []byte("not an intent")
	if _, err := r.js.PublishMsg(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "a dead letter", func() bool {
		s, err := r.js.Stream(context.Background(), r.names.Stream(stream.DLQ))
		if err != nil {
			return false
		}
		info, err := s.Info(context.Background())
		return err == nil && info.State.Msgs == 1
	})
}
