package notifier_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/esimflow/esimflow/notifier"
	"github.com/esimflow/esimflow/shared/admin"
	"github.com/esimflow/esimflow/shared/config"
	"github.com/esimflow/esimflow/shared/intent"
	"github.com/esimflow/esimflow/shared/natstest"
	"github.com/esimflow/esimflow/shared/poll"
	"github.com/esimflow/esimflow/shared/redistest"
	"github.com/esimflow/esimflow/shared/store"
	"github.com/esimflow/esimflow/shared/store/kvstore"
	"github.com/esimflow/esimflow/shared/store/redisstore"
	"github.com/esimflow/esimflow/shared/stream"
	"github.com/esimflow/esimflow/shared/testns"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// sink collects console lines.
type sink struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *sink) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.Write(p)
}

// has reports whether a line holds every one of parts.
func (s *sink) has(parts ...string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, line := range strings.Split(s.buf.String(), "\n") {
		if !slices.ContainsFunc(parts, func(p string) bool { return !strings.Contains(line, p) }) {
			return true
		}
	}
	return false
}

func (s *sink) count(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Count(s.buf.String(), "id="+id+" ")
}

// options shape a rig.
type options struct {
	n   int               // notifier instances (default 1)
	env map[string]string // settings besides the namespace
	// channels builds instance i's channels; nil: the console, printing to rig.out.
	channels func(i int) []notifier.Channel
	resolver notifier.ContactResolver
	redis    bool // keep state in Redis (skips without one) instead of NATS KV
	noWake   bool // no wake-ups: waiting messages rely on their retries
	lease    time.Duration
	// wrap, when set, stands between the notifiers and the store (faults).
	wrap    func(store.Store) store.Store
	clock   func() time.Time
	recheck time.Duration // how often a held message looks again
}

type rig struct {
	nc    *nats.Conn
	js    jetstream.JetStream
	names stream.Names
	store store.Store
	out   *sink
	api   *httptest.Server // instance 0's internal API
}

// start runs opts.n notifier instances on one durable consumer and store.
func start(t *testing.T, opts options) rig {
	t.Helper()
	srv := natstest.StartEmbedded(t)
	nc := srv.Connect(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ns := testns.New(t)
	env := map[string]string{"ESIMFLOW_NAMESPACE": ns}
	for k, v := range opts.env {
		env[k] = v
	}
	cfg, err := config.Load(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	names := stream.NewNames(ns)
	ctx, cancel := context.WithCancel(context.Background())
	_, cons, err := stream.Ensure(ctx, js, names, stream.Limits{Replicas: 1, EventsMaxBytes: -1, MaxDeliver: cfg.MaxDeliver})
	if err != nil {
		t.Fatal(err)
	}
	var st store.Store
	if opts.redis {
		client := redistest.Client(t)
		redistest.RemovePrefix(t, client, ns)
		if st, err = redisstore.New(client, redisstore.Options{Namespace: ns, SeenTTL: time.Hour}); err != nil {
			t.Fatal(err)
		}
	} else if st, err = kvstore.New(ctx, js, kvstore.Options{Namespace: ns, SeenTTL: time.Hour}); err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	out := &sink{}
	r := rig{nc: nc, js: js, names: names, store: st, out: out}
	used := st
	if opts.wrap != nil {
		used = opts.wrap(st)
	}
	var wg sync.WaitGroup
	for i := range max(opts.n, 1) {
		deps := notifier.Deps{Consumer: cons, Publisher: js, Store: used, Console: out, Admin: admin.New(""), Lease: opts.lease,
			Logger: log.With("instance", i), Owner: fmt.Sprintf("n%d", i), Resolver: opts.resolver,
			Clock: opts.clock, HoldRecheck: opts.recheck}
		if opts.channels != nil {
			deps.Channels = opts.channels(i)
		}
		if !opts.noWake {
			deps.Wake = nc
		}
		s, err := notifier.New(cfg.Notifier, deps)
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			r.api = httptest.NewServer(deps.Admin.Handler())
			t.Cleanup(r.api.Close)
		}
		wg.Go(func() {
			if err := s.Run(ctx); err != nil {
				t.Errorf("notifier %d: %v", i, err)
			}
		})
	}
	t.Cleanup(func() { cancel(); wg.Wait() })
	return r
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

// putContact registers a contact through the API.
func (r rig) putContact(t *testing.T, txID, body string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPut, r.api.URL+"/v1/contacts/"+txID, strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(resp.Body)
		t.Fatalf("PUT contact %s: %s %s", txID, resp.Status, b)
	}
}

// quiet waits until the notifier consumer has nothing pending or unacked.
func (r rig) quiet(t *testing.T) {
	t.Helper()
	poll.Until(t, "notifier consumer drained", func() bool {
		ok, err := natstest.Drained(context.Background(), r.js, r.names.Stream(stream.Notify), r.names.Consumer(stream.NotifierConsumer))
		return err == nil && ok
	})
}

// deadLetter is one message in ESIM_DLQ.
type deadLetter struct {
	intent intent.Intent
	err    string
}

func (r rig) deadLetters(t *testing.T) []deadLetter {
	t.Helper()
	s, err := r.js.Stream(context.Background(), r.names.Stream(stream.DLQ))
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var out []deadLetter
	for seq := info.State.FirstSeq; seq > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(context.Background(), seq)
		if err != nil {
			continue
		}
		var in intent.Intent
		_ = json.Unmarshal(m.Data, &in)
		out = append(out, deadLetter{intent: in, err: m.Header.Get(stream.HeaderError)})
	}
	return out
}

// statuses lists an iccid's log as "status/channel" strings, oldest first.
func (r rig) statuses(t *testing.T, iccid, id string) []string {
	t.Helper()
	log, err := r.store.Notifications(context.Background(), iccid)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, n := range log {
		if id == "" || n.ID == id {
			out = append(out, n.Status+"/"+n.Channel)
		}
	}
	return out
}
