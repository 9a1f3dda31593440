package processor_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/esimflow/esimflow/processor"
	"github.com/esimflow/esimflow/shared/admin"
	"github.com/esimflow/esimflow/shared/config"
	"github.com/esimflow/esimflow/shared/dedupe"
	"github.com/esimflow/esimflow/shared/event"
	"github.com/esimflow/esimflow/shared/natstest"
	"github.com/esimflow/esimflow/shared/redistest"
	"github.com/esimflow/esimflow/shared/store/kvstore"
	"github.com/esimflow/esimflow/shared/store/redisstore"
	"github.com/esimflow/esimflow/shared/stream"
	"github.com/esimflow/esimflow/shared/testns"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
)

// rig is one namespace on one NATS server, with its streams and consumers.
type rig struct {
	srv   *natstest.Server
	js    jetstream.JetStream
	ns    string
	names stream.Names
	cfg   config.Config
}

type rigOpts struct {
	external   bool // the machine's NATS (skips when unset) instead of an in-process one
	maxDeliver int  // default 6
}

func newRig(t testing.TB, o rigOpts) *rig {
	t.Helper()
	srv := natstest.StartEmbedded
	if o.external {
		srv = natstest.External
	}
	r := &rig{srv: srv(t), ns: testns.New(t)}
	r.srv.RemoveNamespace(t, r.ns)
	js, err := jetstream.New(r.srv.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	r.js, r.names = js, stream.NewNames(r.ns)
	if o.maxDeliver == 0 {
		o.maxDeliver = 6
	}
	env := map[string]string{"ESIMFLOW_NAMESPACE": r.ns, "ESIMFLOW_MAX_DELIVER": strconv.Itoa(o.maxDeliver)}
	if r.cfg, err = config.Load(func(k string) string { return env[k] }); err != nil {
		t.Fatal(err)
	}
	if _, _, err := stream.Ensure(context.Background(), js, r.names, r.limits()); err != nil {
		t.Fatal(err)
	}
	return r
}

func (r *rig) limits() stream.Limits {
	return stream.Limits{Replicas: 1, EventsMaxBytes: -1, MaxDeliver: r.cfg.MaxDeliver}
}

func (r *rig) kvStore(t testing.TB) *kvstore.Store {
	t.Helper()
	st, err := kvstore.New(context.Background(), r.js, kvstore.Options{Namespace: r.ns, SeenTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// redisStore is a store on url (the machine's Redis when empty, else skip);
// the keys of the rig's namespace go when the test ends.
func (r *rig) redisStore(t testing.TB, url string) (*redisstore.Store, redis.UniversalClient) {
	t.Helper()
	var c redis.UniversalClient
	if url == "" {
		c = redistest.Client(t)
		redistest.RemovePrefix(t, c, r.ns)
	} else {
		opts, err := redis.ParseURL(url)
		if err != nil {
			t.Fatal(err)
		}
		c = redis.NewClient(opts)
		t.Cleanup(func() { _ = c.Close() })
	}
	st, err := redisstore.New(c, redisstore.Options{Namespace: r.ns, SeenTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	return st, c
}

// instance is one running processor.
type instance struct {
	admin *admin.Server
	nc    *nats.Conn
	stop  func()
}

type instOpts struct {
	wrap    func(processor.Publisher) processor.Publisher
	workers int
	batch   int // ESIMFLOW_PROCESSOR_BATCH; 0 = one at a time
	// consumer names the durable to pull from (default: the processor's).
	consumer string
}

func testLogger() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// start runs a processor on its own NATS connection, as a separate process would.
func (r *rig) start(t testing.TB, st processor.Store, o instOpts) *instance {
	t.Helper()
	nc := r.srv.Connect(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	name := o.consumer
	if name == "" {
		name = r.names.Consumer(stream.ProcessorConsumer)
	}
	cons, err := js.Consumer(context.Background(), r.names.Stream(stream.Events), name)
	if err != nil {
		t.Fatal(err)
	}
	var pub processor.Publisher = js
	if o.wrap != nil {
		pub = o.wrap(js)
	}
	adm := admin.New("")
	cfg := r.cfg.Processor
	cfg.Batch = max(o.batch, 1)
	s, err := processor.New(cfg, processor.Deps{
		Consumer: cons, Publisher: pub, Streams: js, Subscriber: nc, Store: st, Admin: adm, Logger: testLogger(), Workers: o.workers,
		Wake: nc,
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	stopped := false
	in := &instance{admin: adm, nc: nc}
	in.stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("processor.Run: %v", err)
		}
	}
	t.Cleanup(in.stop)
	return in
}

// call answers an API request on the instance.
func (in *instance) call(t testing.TB, method, path string, v any) int {
	t.Helper()
	w := in.raw(method, path)
	if v != nil && w.Code < 300 {
		if err := json.Unmarshal(w.Body.Bytes(), v); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, w.Body)
		}
	}
	return w.Code
}

func (in *instance) raw(method, path string) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	in.admin.Handler().ServeHTTP(w, httptest.NewRequest(method, path, nil))
	return w
}

func (in *instance) ready(t testing.TB) bool {
	return in.call(t, http.MethodGet, "/readyz", nil) == http.StatusOK
}

// publish stores a body as ingest does, its dedupe key the Nats-Msg-Id;
// withID false leaves that out, as for a provider retry later than the
// duplicate window: the processor derives the same key from the body.
func (r *rig) publish(t testing.TB, body string, withID bool) {
	t.Helper()
	ev, err := event.Decode([]byte(body))
	key := dedupe.Key(ev, err, []byte(body))
	m := nats.NewMsg(r.names.EventSubject(ev.Type))
	m.Data = []byte(body)
	m.Header.Set(stream.HeaderReceivedAt, time.Now().UTC().Format(time.RFC3339Nano))
	var opts []jetstream.PublishOpt
	if withID && key != "" {
		opts = append(opts, jetstream.WithMsgID(key))
	}
	if _, err := r.js.PublishMsg(context.Background(), m, opts...); err != nil {
		t.Fatal(err)
	}
}

func (r *rig) streamMsgs(t testing.TB, name string) []*jetstream.RawStreamMsg {
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

// quiet reports whether the processor consumer has nothing pending or unacked.
func (r *rig) quiet(t testing.TB) bool {
	t.Helper()
	ok, err := natstest.Drained(context.Background(), r.js, r.names.Stream(stream.Events), r.names.Consumer(stream.ProcessorConsumer))
	return err == nil && ok
}
