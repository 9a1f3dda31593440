package ingest_test

import (
	"context"

	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/esimflow/esimflow/ingest"
	"github.com/esimflow/esimflow/shared/admin"
	"github.com/esimflow/esimflow/shared/config"
	"github.com/esimflow/esimflow/shared/natstest"
	"github.com/esimflow/esimflow/shared/provider"
	"github.com/esimflow/esimflow/shared/stream"
	"github.com/esimflow/esimflow/shared/testns"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

type fixture struct {
	url   string
	js    jetstream.JetStream
	names stream.Names
	srv   *natstest.Server
	admin *admin.Server
}

// start runs ingest against srv with its own namespace and returns its URL.
func start(t *testing.T, srv *natstest.Server, env map[string]string) fixture {
	t.Helper()
	return startWith(t, srv, env, nil)
}

// startWith is start with the given provider adapters (nil: as configured).
func startWith(t *testing.T, srv *natstest.Server, env map[string]string, reg *provider.Registry) fixture {
	t.Helper()
	ns := testns.New(t)
	env["ESIMFLOW_NAMESPACE"] = ns
	cfg, err := config.Load(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	nc := srv.Connect(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	names := stream.NewNames(ns)
	ctx, cancel := context.WithCancel(context.Background())
	if _, _, err := stream.Ensure(ctx, js, names, stream.Limits{Replicas: 1, EventsMaxBytes: -1, MaxDeliver: cfg.MaxDeliver}); err != nil {
		t.Fatal(err)
	}
	srv.RemoveNamespace(t, ns)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	adm := admin.New("")
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	go func() {
		done <- ingest.Run(ctx, cfg.Ingest, ingest.Deps{Publisher: js, Admin: adm, Logger: log, Listener: ln, Providers: reg})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ingest.Run: %v", err)
		}
	})
	return fixture{url: "http://" + ln.Addr().String(), js: js, names: names, srv: srv, admin: adm}
}

func post(t *testing.T, url, body string) (*http.Response, string) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp, string(b)
}

func lastMsg(t *testing.T, f fixture, streamName, subject string) jetstream.RawStreamMsg {
	t.Helper()
	s, err := f.js.Stream(context.Background(), f.names.Stream(streamName))
	if err != nil {
		t.Fatal(err)
	}
	m, err := s.GetLastMsgForSubject(context.Background(), subject)
	if err != nil {
		t.Fatalf("no message on %s: %v", subject, err)
	}
	return *m
}

func TestWebhook(t *testing.T) {
	f := start(t, natstest.Start(t), map[string]string{"ESIMFLOW_INGEST_MAX_BODY": "2048"})

	// Each subtest posts events of its own (its own iccid), so that each
	// runs alone (-run) and in any order.
	t.Run("event stored before 200", func(t *testing.T) {
		profile := `{"eventType":"PROFILE_STATUS","iccid":"8901","currentStatus":"ACTIVATED","timestamp":"2024-01-15T14:00:00Z"}`
		resp, body := post(t, f.url+"/webhooks/esim", profile)
		if resp.StatusCode != 200 || strings.TrimSpace(body) != `{"received":true}` {
			t.Fatalf("got %d %s", resp.StatusCode, body)
		}
		m := lastMsg(t, f, stream.Events, f.names.EventSubject("PROFILE_STATUS"))
		if string(m.Data) != profile || stream.DedupeKey(m.Header) == "" || m.Header.Get(stream.HeaderReceivedAt) == "" {
			t.Errorf("stored %s with headers %v", m.Data, m.Header)
		}
	})
	t.Run("duplicate answered 200 and stored once", func(t *testing.T) {
		info := func() uint64 {
			s, _ := f.js.Stream(context.Background(), f.names.Stream(stream.Events))
			i, _ := s.Info(context.Background())
			return i.State.Msgs
		}
		first := `{"eventType":"PROFILE_STATUS","iccid":"8902","currentStatus":"ACTIVATED","timestamp":"2024-01-15T14:00:00Z"}`
		if resp, body := post(t, f.url+"/webhooks/esim", first); resp.StatusCode != 200 {
			t.Fatalf("first copy: %d %s", resp.StatusCode, body)
		}
		before := info()
		// The same event re-spelled: keys reordered.
		resp, _ := post(t, f.url+"/api/webhooks/esim", `{"timestamp":"2024-01-15T14:00:00Z","currentStatus":"ACTIVATED","iccid":"8902","eventType":"PROFILE_STATUS"}`)
		if resp.StatusCode != 200 || info() != before {
			t.Errorf("status %d, messages %d → %d", resp.StatusCode, before, info())
		}
	})
	t.Run("untimed repeats all stored", func(t *testing.T) {
		// Issue 14, case 1: IN_USE → SUSPENDED → IN_USE without notifyId or
		// eventGenerateTime. Each is answered 200, so each must be in the
		// stream: the third repeats the first and is a new fact.
		s, err := f.js.Stream(context.Background(), f.names.Stream(stream.Events))
		if err != nil {
			t.Fatal(err)
		}
		count := func() uint64 {
			i, err := s.Info(context.Background(), jetstream.WithSubjectFilter(f.names.EventSubject("ESIM_STATUS")))
			if err != nil {
				t.Fatal(err)
			}
			return i.State.Msgs
		}
		before := count()
		for _, st := range []string{"IN_USE", "SUSPENDED", "IN_USE"} {
			body := `{"notifyType":"ESIM_STATUS","content":{"iccid":"8903","esimStatus":"` + st + `","smdpStatus":"ENABLED"}}`
			if resp, b := post(t, f.url+"/webhooks/esim", body); resp.StatusCode != 200 {
				t.Fatalf("%s: %d %s", st, resp.StatusCode, b)
			}
		}
		if got := count() - before; got != 3 {
			t.Errorf("%d of 3 answered events stored", got)
		}
	})
	t.Run("an untimed event after a keyed one carries no key", func(t *testing.T) {
		// ingest reuses the message it publishes, headers included: an
		// event without a key must not go out with the key of the event
		// before it, or JetStream drops it as that event's duplicate
		// although it was answered 200. Sequential requests on one
		// connection get the same message from the pool.
		s, err := f.js.Stream(context.Background(), f.names.Stream(stream.Events))
		if err != nil {
			t.Fatal(err)
		}
		subject := f.names.EventSubject("ESIM_STATUS")
		count := func() uint64 {
			i, err := s.Info(context.Background(), jetstream.WithSubjectFilter(subject))
			if err != nil {
				t.Fatal(err)
			}
			return i.State.Msgs
		}
		before := count()
		keyed := `{"notifyType":"ESIM_STATUS","notifyId":"n-8904","content":{"iccid":"8904","esimStatus":"IN_USE","smdpStatus":"ENABLED"}}`
		untimed := `{"notifyType":"ESIM_STATUS","content":{"iccid":"8905","esimStatus":"IN_USE","smdpStatus":"ENABLED"}}`
		for i, body := range []string{keyed, untimed, keyed, untimed} {
			if resp, b := post(t, f.url+"/webhooks/esim", body); resp.StatusCode != 200 {
				t.Fatalf("request %d: %d %s", i+1, resp.StatusCode, b)
			}
			if i == 2 {
				continue // the keyed event's duplicate: not stored again
			}
			m := lastMsg(t, f, stream.Events, subject)
			if key := stream.DedupeKey(m.Header); string(m.Data) != body || (body == untimed) != (key == "") {
				t.Errorf("request %d: last stored %s with key %q", i+1, m.Data, key)
			}
		}
		// The keyed event once, the untimed one both times.
		if got := count() - before; got != 3 {
			t.Errorf("%d of 3 events stored", got)
		}
	})
	t.Run("unknown type stored under unknown", func(t *testing.T) {
		body := `{"eventType":"REFUND","orderNo":"X1"}`
		if resp, _ := post(t, f.url+"/webhooks/esim", body); resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		if m := lastMsg(t, f, stream.Events, f.names.EventSubject("UNKNOWN")); string(m.Data) != body {
			t.Errorf("stored %s", m.Data)
		}
	})
	t.Run("malformed but JSON stored for the processor", func(t *testing.T) {
		body := `{"eventType":"DATA_USAGE","iccid":"8901","usedVolume":"lots"}`
		if resp, _ := post(t, f.url+"/webhooks/esim", body); resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		if m := lastMsg(t, f, stream.Events, f.names.EventSubject("DATA_USAGE")); string(m.Data) != body {
			t.Errorf("stored %s", m.Data)
		}
	})
	t.Run("invalid JSON is 400 and kept in rejected", func(t *testing.T) {
		resp, body := post(t, f.url+"/webhooks/esim", `{"eventType":`)
		if resp.StatusCode != 400 || !strings.Contains(body, `"error"`) {
			t.Fatalf("got %d %s", resp.StatusCode, body)
		}
		m := lastMsg(t, f, stream.Rejected, f.names.RejectedSubject())
		if string(m.Data) != `{"eventType":` || m.Header.Get(stream.HeaderError) == "" {
			t.Errorf("rejected %s %v", m.Data, m.Header)
		}
	})
	t.Run("oversize body is 413", func(t *testing.T) {
		big := `{"eventType":"UNKNOWN","pad":"` + strings.Repeat("x", 4096) + `"}`
		if resp, body := post(t, f.url+"/webhooks/esim", big); resp.StatusCode != 413 || !strings.Contains(body, "error") {
			t.Errorf("got %d %s", resp.StatusCode, body)
		}
	})
	t.Run("GET is not allowed", func(t *testing.T) {
		resp, err := http.Get(f.url + "/webhooks/esim")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("status %d", resp.StatusCode)
		}
	})
}

// TestUnavailableJetStreamIs503 shows invariant 1 from the other side: with
// JetStream gone, ingest answers 503 with Retry-After, never 200.
func TestUnavailableJetStreamIs503(t *testing.T) {
	srv := natstest.StartEmbedded(t)
	f := start(t, srv, map[string]string{"ESIMFLOW_INGEST_PUBLISH_TIMEOUT": "500ms"})
	if resp, _ := post(t, f.url+"/webhooks/esim", `{"eventType":"PROFILE_STATUS","iccid":"1","currentStatus":"ACTIVATED"}`); resp.StatusCode != 200 {
		t.Fatalf("healthy server: status %d", resp.StatusCode)
	}
	srv.Embedded.DisableJetStream()
	for i := range 5 {
		resp, body := post(t, f.url+"/webhooks/esim", `{"eventType":"PROFILE_STATUS","iccid":"2","currentStatus":"ACTIVATED","n":`+string(rune('0'+i))+`}`)
		if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
			t.Fatalf("JetStream disabled: got %d %s (Retry-After %q)", resp.StatusCode, body, resp.Header.Get("Retry-After"))
		}
	}
	srv.Embedded.Shutdown()
	resp, _ := post(t, f.url+"/webhooks/esim", `{"eventType":"PROFILE_STATUS","iccid":"3","currentStatus":"ACTIVATED"}`)
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("server down: got %d", resp.StatusCode)
	}
}

// TestLastWebhookPerProvider: a stored webhook sets its provider's last
// received time, labelled by the route's provider family; a refused one
// does not.
func TestLastWebhookPerProvider(t *testing.T) {
	f := start(t, natstest.Start(t), map[string]string{})
	last := func() int {
		n, err := testutil.GatherAndCount(f.admin.Gatherer(), "esimflow_webhook_last_received_timestamp_seconds")
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if resp, _ := post(t, f.url+"/webhooks/esim", "not json"); resp.StatusCode != 400 || last() != 0 {
		t.Fatalf("a refused webhook: %d, %d providers seen", resp.StatusCode, last())
	}
	before := time.Now()
	if resp, body := post(t, f.url+"/api/webhooks/esim", `{"eventType":"PROFILE_STATUS","iccid":"8931","currentStatus":"ACTIVATED","timestamp":"2024-01-15T14:00:00Z"}`); resp.StatusCode != 200 {
		t.Fatalf("post: %d %s", resp.StatusCode, body)
	}
	fams, err := f.admin.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, fam := range fams {
		if fam.GetName() != "esimflow_webhook_last_received_timestamp_seconds" {
			continue
		}
		m := fam.GetMetric()
		if len(m) != 1 || m[0].GetLabel()[0].GetValue() != "esimaccess" || m[0].GetGauge().GetValue() < float64(before.Unix()) {
			t.Fatalf("last received: %v", m)
		}
		return
	}
	t.Fatal("no esimflow_webhook_last_received_timestamp_seconds after a stored webhook")
}

// TestTraceContextCarriedWithTracingOff: with no tracer configured, a
// request's traceparent still reaches the stored message (the processor and
// notifier continue the sender's trace), and a request without one stores
// none.
func TestTraceContextCarriedWithTracingOff(t *testing.T) {
	f := start(t, natstest.Start(t), map[string]string{})
	const parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	for _, tt := range []struct {
		name, traceparent, iccid string
	}{
		{"carried", parent, "8901000000000000101"},
		{"none sent", "", "8901000000000000102"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			body := `{"eventType":"PROFILE_STATUS","iccid":"` + tt.iccid + `","currentStatus":"ACTIVATED","timestamp":"2024-01-15T10:00:00Z"}`
			req, err := http.NewRequest(http.MethodPost, f.url+"/webhooks/esim", strings.NewReader(body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			if tt.traceparent != "" {
				req.Header.Set("traceparent", tt.traceparent)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status %d", resp.StatusCode)
			}
			m := lastMsg(t, f, stream.Events, f.names.EventSubject("PROFILE_STATUS"))
			if string(m.Data) != body {
				t.Fatalf("last message %s, want %s", m.Data, body)
			}
			if got := m.Header.Get("traceparent"); got != tt.traceparent {
				t.Fatalf("traceparent %q, want %q", got, tt.traceparent)
			}
		})
	}
}
