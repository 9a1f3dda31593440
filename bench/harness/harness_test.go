package harness

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"text/template"
	"time"

	"github.com/esimflow/esimflow/ingest/verify"
	"github.com/esimflow/esimflow/shared/dedupe"
	"github.com/esimflow/esimflow/shared/event"
	"github.com/esimflow/esimflow/shared/poll"
	"github.com/esimflow/esimflow/shared/stream"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// The targets must be what ingest accepts: a valid token and signature, and
// bodies that decode to known events with distinct dedupe keys.
func TestTargetsAreSignedDistinctEvents(t *testing.T) {
	s, err := NewSigner()
	if err != nil {
		t.Fatal(err)
	}
	check, err := verify.NewStandardWebhooks([]string{s.Secret}, time.Minute, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	tr := s.Targeter("http://127.0.0.1:1", NewBodies(7))
	keys := map[string]bool{}
	for i := range 30 {
		var tgt vegeta.Target
		if err := tr(&tgt); err != nil {
			t.Fatal(err)
		}
		if want := "http://127.0.0.1:1/webhooks/esim/" + s.Token; tgt.URL != want {
			t.Fatalf("url %s, want %s", tgt.URL, want)
		}
		req := httptest.NewRequest(tgt.Method, tgt.URL, nil)
		req.Header = tgt.Header
		if err := check.Verify(verify.Request{HTTP: req, Body: tgt.Body}); err != nil {
			t.Fatalf("target %d: signature refused: %v", i, err)
		}
		ev, err := event.Decode(tgt.Body)
		if err != nil || ev.Type == event.Unknown {
			t.Fatalf("target %d: %s decodes to %q, %v", i, tgt.Body, ev.Type, err)
		}
		key := dedupe.Key(ev, nil, tgt.Body)
		if keys[key] {
			t.Fatalf("target %d: dedupe key %s repeated", i, key)
		}
		keys[key] = true
	}
}

func TestFindHotBenchmarks(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	pkgs, names, err := findHotBenchmarks(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"./shared/dedupe", "./shared/event", "./ingest/verify"} {
		if !slices.Contains(pkgs, want) {
			t.Errorf("packages %v lack %s", pkgs, want)
		}
	}
	for _, want := range []string{"BenchmarkDecode", "BenchmarkKey", "BenchmarkSignature"} {
		if !slices.Contains(names, want) {
			t.Errorf("benchmarks %v lack %s", names, want)
		}
	}
	if slices.ContainsFunc(names, func(n string) bool { return strings.HasPrefix(n, "BenchmarkThroughput") }) {
		t.Errorf("benchmarks %v include a non-hot one", names)
	}
}

// TestBaselineAndTunedConsumer runs the harness's own parts end to end, small:
// its servers, the baseline handler under a short load (every answered
// request is in the stream), a backlog, and the tuned consumer draining it.
func TestBaselineAndTunedConsumer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Second)
	defer cancel()
	h := testHarness(ctx, t, Config{Conns: 4, Duration: 300 * time.Millisecond, Backlog: 500})
	infra, js, rdb, signer := h.infra, h.js, h.rdb, h.signer

	names, bodies := h.namespace("test")
	if _, _, err := stream.Ensure(ctx, js, names, limits); err != nil {
		t.Fatal(err)
	}
	addr, err := freeAddr()
	if err != nil {
		t.Fatal(err)
	}
	srvCtx, stopSrv := context.WithCancel(ctx)
	served := make(chan error, 1)
	go func() {
		served <- ServeBaseline(srvCtx, slog.New(slog.DiscardHandler), addr, infra.NATSURL, names.EventSubject(event.Type("BASELINE")))
	}()
	waitListening(t, addr)
	l := MaxLoad(ctx, signer.Targeter("http://"+addr, bodies), h.cfg.Conns, h.cfg.Duration)
	stopSrv()
	if err := <-served; err != nil {
		t.Fatal(err)
	}
	if err := l.Err(); err != nil {
		t.Fatal(err)
	}
	s, err := js.Stream(ctx, names.Stream(stream.Events))
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ok := uint64(math.Round(float64(l.Requests) * l.Success)); info.State.Msgs != ok {
		t.Errorf("stream holds %d messages, %d requests were answered 200", info.State.Msgs, ok)
	}

	tuned, err := js.CreateOrUpdateConsumer(ctx, names.Stream(stream.Events), names.ConsumerConfig(tunedConsumer, limits))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Purge(ctx); err != nil {
		t.Fatal(err)
	}
	if err := h.publishBacklog(ctx, names, bodies, h.cfg.Backlog); err != nil {
		t.Fatal(err)
	}
	rate, _, err := h.tunedDrain(ctx, tuned, names)
	if err != nil {
		t.Fatal(err)
	}
	if rate <= 0 {
		t.Errorf("tuned drain rate %v", rate)
	}
	seen, err := rdb.Keys(ctx, "tuned:"+names.Namespace()+":seen:*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(seen) != h.cfg.Backlog {
		t.Errorf("tuned consumer marked %d events seen, want %d", len(seen), h.cfg.Backlog)
	}
}

func waitListening(t *testing.T, addr string) {
	t.Helper()
	poll.Until(t, addr+" listening", func() bool {
		resp, err := http.Get("http://" + addr + "/")
		if err == nil {
			_ = resp.Body.Close()
		}
		return err == nil
	}, poll.Timeout(2*time.Second))
}

// The search of the sustained rate, against pipelines of known capacity whose
// steps above it let through only that capacity: it ends held within 5% of the
// reference below the capacity, in the steps the harness allows.
func TestRateSearch(t *testing.T) {
	const ref = 10_000.0
	for _, capacity := range []float64{300, 1800, 4_900, 5_000, 7_300, 9_960, 12_000} {
		s := newRateSearch(ref)
		for range 7 {
			rate, ok := s.next()
			if !ok {
				break
			}
			s.record(rate, rate <= capacity, min(rate, capacity))
		}
		want := min(capacity, ref)
		if s.lo > want || (want-s.lo > 0.05*ref && capacity >= 0.05*ref) {
			t.Errorf("capacity %.0f: search ended at %.0f after %d steps (bounds %.0f–%.0f)", capacity, s.lo, s.steps, s.lo, s.hi)
		}
	}
}

// The scaling note names the first instance count that added under a quarter
// of one instance's rate, and blames the CPU only when the machine's cores
// were busy in the step before it.
func TestScaleNote(t *testing.T) {
	steps := []scaleStep{
		{instances: 1, rate: 20_000, perEvent: [3]float64{35, 20, 10}, cores: 1.3, machine: 1.5},
		{instances: 2, rate: 29_000, perEvent: [3]float64{40, 21, 11}, cores: 1.7, machine: 1.9},
		{instances: 3, rate: 30_000, perEvent: [3]float64{45, 22, 11}, cores: 1.8, machine: 2.0},
	}
	note := scaleNote(steps, 2)
	for _, want := range []string{"3 → 30000 events/s (1.50 × one instance)", "flattens at 3 instances: with 2 the machine's 2 cores were already 95 % busy",
		"1.70 cores of it processors, NATS and Redis, at 72 µs CPU per event across the three; 0.20 other processes"} {
		if !strings.Contains(note, want) {
			t.Errorf("note lacks %q:\n%s", want, note)
		}
	}
	steps[1].machine = 1.2
	if note := scaleNote(steps, 2); !strings.Contains(note, "flattens at 3 instances with cores to spare (1.20 of 2 busy with 2)") {
		t.Errorf("a curve flat with idle cores is blamed on the CPU:\n%s", note)
	}
	steps[2].rate = 40_000
	if note := scaleNote(steps, 2); !strings.Contains(note, "did not flatten") {
		t.Errorf("a curve still rising is said to flatten:\n%s", note)
	}
}

// The Connect peer's configurations are what its pinned version accepts:
// its own linter reads them (when bench/connectpeer has been built into bin/,
// as BENCH_PEERS=1 does).
func TestConnectConfigsLint(t *testing.T) {
	bin := connectPeer(t)
	h := &Harness{cfg: Config{WorkDir: t.TempDir()}, connect: bin}
	names := stream.NewNames("lint")
	for name, c := range map[string]struct {
		tmpl *template.Template
		conf connectConf
	}{
		"ingest": {connectIngest, connectConf{Addr: "127.0.0.1:1", Token: "tok", Key: "key", NATSURL: "nats://127.0.0.1:1",
			SubjectPrefix: strings.TrimSuffix(names.EventSubject("x"), "x")}},
		"processor": {connectProcessor, connectConf{NATSURL: "nats://127.0.0.1:1", Stream: names.Stream(stream.Events),
			Durable: names.Consumer(connectConsumer), RedisURL: "redis://127.0.0.1:1", KeyPrefix: "connect:lint:"}},
	} {
		path, _, err := h.writeConnectConf(name, c.tmpl, c.conf)
		if err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(bin, "lint", path).CombinedOutput(); err != nil {
			t.Errorf("%s config refused: %v\n%s", name, err, out)
		}
	}
}

// The Connect peer's ingest makes ingest's checks: a signed request is
// answered 200 and stored with its body's hash as Nats-Msg-Id, one whose
// signature is wrong is refused and not stored. Without this its figure could
// measure a pipeline that checks nothing.
func TestConnectIngestChecks(t *testing.T) {
	bin := connectPeer(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	h := testHarness(ctx, t, Config{})
	h.connect = bin
	js, signer := h.js, h.signer
	names, bodies := h.namespace("test")
	if _, _, err := stream.Ensure(ctx, js, names, limits); err != nil {
		t.Fatal(err)
	}
	p, url, err := h.startConnectIngest(ctx, names)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	tr := signer.Targeter(url, bodies)

	send := func(tamper bool) (int, []byte) {
		var tgt vegeta.Target
		if err := tr(&tgt); err != nil {
			t.Fatal(err)
		}
		if tamper {
			tgt.Header.Set("Webhook-Signature", "v1,"+strings.Repeat("A", 43)+"=")
		}
		req, err := tgt.Request()
		if err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req.WithContext(ctx))
		if err != nil {
			t.Fatal(err)
		}
		_ = resp.Body.Close()
		return resp.StatusCode, tgt.Body
	}
	if code, _ := send(true); code == http.StatusOK {
		t.Errorf("a request with a wrong signature was answered %d", code)
	}
	code, body := send(false)
	if code != http.StatusOK {
		t.Fatalf("a signed request was answered %d", code)
	}
	s, err := js.Stream(ctx, names.Stream(stream.Events))
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Msgs != 1 {
		t.Fatalf("stream holds %d messages, want the signed one only", info.State.Msgs)
	}
	msg, err := s.GetMsg(ctx, info.State.LastSeq)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(body)
	if got := msg.Header.Get(jetstream.MsgIDHeader); got != hex.EncodeToString(sum[:]) || !bytes.Equal(msg.Data, body) {
		t.Errorf("stored %q with Nats-Msg-Id %s, want the body with its SHA-256", msg.Data, got)
	}
	ev, err := event.Decode(body)
	if err != nil {
		t.Fatal(err)
	}
	if want := names.EventSubject(ev.Type); msg.Subject != want {
		t.Errorf("stored on %s, want %s (ingest's subject)", msg.Subject, want)
	}
}

// A scaling drain with two processors on one durable consumer takes the whole
// backlog and measures every process it names: the processors, NATS and
// Redis (when bin/processor is built, as make bench does).
func TestScaleDrainTwoProcessors(t *testing.T) {
	binDir, err := filepath.Abs("../../bin")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(binDir, "processor")); err != nil {
		t.Skipf("bin/processor not there (make build puts esimflow's binaries in bin/): %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	h := testHarness(ctx, t, Config{Backlog: 2000, BinDir: binDir})
	st, err := h.scaleDrain(ctx, 2)
	if err != nil {
		t.Fatal(err)
	}
	if st.instances != 2 || !(st.rate > 0) || !(st.cores > 0) || !(st.machine > 0) {
		t.Errorf("drain %+v: want 2 instances, a rate, cores busy in them and in the machine", st)
	}
	for i, v := range st.perEvent {
		if !(v > 0) {
			t.Errorf("CPU per event %d (processors, NATS, Redis) is %v", i, v)
		}
	}
}

func TestParseWake(t *testing.T) {
	out := []byte("goos: linux\npkg: github.com/esimflow/esimflow/cmd/esimflow/allinone\n" +
		"BenchmarkWakeLatency/contact_last-2         	       5	  43084366 ns/op	        47.00 max_ms	        35.00 p50_ms	        47.00 p99_ms\n" +
		"BenchmarkWakeLatency/link_last-2            	       5	  54404089 ns/op	        60.00 max_ms	        44.00 p50_ms	        60.00 p99_ms\nPASS\n")
	got := parseWake(out)
	if got["contact_last"]["p99_ms"] != 47 || got["link_last"]["p50_ms"] != 44 || len(got) != 2 {
		t.Errorf("parsed %v", got)
	}
}

// testHarness starts a harness's servers (the machine's nats-server and
// redis-server, skipping the test without them) and connections, with cfg
// and a work dir of the test's own.
func testHarness(ctx context.Context, t *testing.T, cfg Config) *Harness {
	t.Helper()
	const natsBin, redisBin = "/usr/sbin/nats-server", "/usr/bin/redis-server"
	for _, bin := range []string{natsBin, redisBin} {
		if _, err := os.Stat(bin); err != nil {
			t.Skipf("%s not installed: the harness needs it (%v)", bin, err)
		}
	}
	cfg.WorkDir = t.TempDir()
	infra, err := StartInfra(ctx, cfg.WorkDir, natsBin, redisBin)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(infra.Stop)
	nc, err := nats.Connect(infra.NATSURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ropts, err := redis.ParseURL(infra.RedisURL)
	if err != nil {
		t.Fatal(err)
	}
	rdb := redis.NewClient(ropts)
	t.Cleanup(func() { _ = rdb.Close() })
	signer, err := NewSigner()
	if err != nil {
		t.Fatal(err)
	}
	return &Harness{cfg: cfg, infra: infra, nc: nc, js: js, rdb: rdb, signer: signer, figs: figures{}}
}

// connectPeer is the Connect peer's binary in bin/, skipping the test when
// it has not been built.
func connectPeer(t *testing.T) string {
	t.Helper()
	bin, err := filepath.Abs("../../bin/connectpeer")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(bin); err != nil {
		t.Skipf("%s not built (BENCH_PEERS=1 make bench builds it): %v", bin, err)
	}
	return bin
}
