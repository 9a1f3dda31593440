package ingest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"github.com/esimflow/esimflow/shared/event"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/esimflow/esimflow/ingest/verify"
	"github.com/esimflow/esimflow/shared/admin"
	"github.com/esimflow/esimflow/shared/natstest"
	"github.com/esimflow/esimflow/shared/stream"
	"github.com/esimflow/esimflow/shared/testns"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// BenchmarkServeWebhook is the handler path alone, as make bench configures
// ingest (path token, Standard Webhooks signature, allowlist): ServeHTTP on
// one reused request and response writer, so allocs/op counts what the
// handler allocates and nothing the test does, each request a distinct
// signed event awaiting a real PubAck (ESIMFLOW_TEST_NATS_URL, else an
// in-process server).
func BenchmarkServeWebhook(b *testing.B) {
	secret := "whsec_" + base64.StdEncoding.EncodeToString([]byte("bench-signing-key-0123456789"))
	srv := natstest.Start(b)
	js, err := jetstream.New(srv.Connect(b))
	if err != nil {
		b.Fatal(err)
	}
	ns := testns.New(b)
	srv.RemoveNamespace(b, ns)
	env := map[string]string{
		"ESIMFLOW_NAMESPACE":           ns,
		"ESIMFLOW_INGEST_TOKENS":       "tok-a,tok-b",
		"ESIMFLOW_INGEST_HMAC_SECRETS": secret,
		"ESIMFLOW_INGEST_ALLOW_CIDRS":  "127.0.0.0/8",
	}
	s, cfg := serverOn(b, js, env)
	sw, _ := verify.NewStandardWebhooks([]string{secret}, time.Minute, time.Now)

	// Every request a distinct event with its own id, made before the clock
	// starts: the bodies make bench sends (the provider's examples, varied).
	shapes := []string{
		`{"eventType":"PROFILE_STATUS","iccid":"89%017d","orderNo":"ORD%09[2]d","previousStatus":"GOT_RESOURCE","currentStatus":"ACTIVATED","timestamp":"%[3]s"}`,
		`{"eventType":"DATA_USAGE","iccid":"89%017d","orderNo":"ORD%09[2]d","usedVolume":859832320,"totalVolume":1073741824,"usagePercent":80,"timestamp":"%[3]s"}`,
		`{"eventType":"ORDER_STATUS","orderNo":"ORD%09[2]d","transactionId":"order_%[2]d","status":"GOT_RESOURCE","timestamp":"%[3]s","profiles":[{"iccid":"89%017[1]d","esimTranNo":"ESIM%[2]d","status":"GOT_RESOURCE"}]}`,
	}
	base := time.Date(2024, 1, 15, 0, 0, 0, 0, time.UTC)
	type signed struct {
		body        []byte
		id, ts, sig string
	}
	// Enough for any b.N this benchmark is run with (-benchtime up to that
	// many x); a b.N beyond it fails, never silently repeats an event.
	reqs := make([]signed, 250_000)
	now := time.Now()
	for i := range reqs {
		n := i + 1
		body := fmt.Appendf(nil, shapes[n%len(shapes)], n, n, base.Add(time.Duration(n)*time.Millisecond).Format(time.RFC3339Nano))
		id := "msg_" + strconv.Itoa(n)
		reqs[i] = signed{body: body, id: id, ts: strconv.FormatInt(now.Unix(), 10), sig: sw.Sign(id, now, body)}
	}

	var next atomic.Int64 // across every run: no event is sent twice
	serve := func(b *testing.B, h http.Handler) {
		if int(next.Load())+b.N > len(reqs) {
			b.Fatalf("b.N %d: more requests than the %d made", b.N, len(reqs))
		}
		b.SetParallelism(32) // 64 goroutines on 2 cores: make bench's 64 connections
		b.ReportAllocs()
		b.ResetTimer()
		cpu0 := cpuTime()
		b.RunParallel(func(pb *testing.PB) {
			body := bytes.NewReader(nil)
			r, err := http.NewRequestWithContext(b.Context(), http.MethodPost, "/webhooks/esim/tok-b", io.NopCloser(body))
			if err != nil {
				b.Error(err)
				return
			}
			r.RemoteAddr = "127.0.0.1:40000"
			r.Header = http.Header{"Content-Type": {"application/json"}, "Webhook-Id": {""}, "Webhook-Timestamp": {""}, "Webhook-Signature": {""}}
			w := &benchWriter{header: http.Header{}}
			for pb.Next() {
				q := &reqs[next.Add(1)-1]
				body.Reset(q.body)
				r.ContentLength = int64(len(q.body))
				r.Header["Webhook-Id"][0], r.Header["Webhook-Timestamp"][0], r.Header["Webhook-Signature"][0] = q.id, q.ts, q.sig
				w.reset()
				h.ServeHTTP(w, r)
				if w.code != http.StatusOK {
					b.Errorf("status %d", w.code)
					return
				}
			}
		})
		b.StopTimer()
		b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
	}
	b.Run("handler=ingest", func(b *testing.B) { serve(b, s.srv.Handler) })
	// ingest's own work alone: the same handler with a publisher that
	// answers at once, so the figure is what ingest adds to a publish,
	// without the network's and the server's noise.
	own, err := New(cfg, Deps{Publisher: answering{}, Admin: admin.New(""), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("handler=ingest-own", func(b *testing.B) { serve(b, own.srv.Handler) })
	// What make bench measures ingest against (bench/harness/baseline.go):
	// read, json.Valid, publish with a Nats-Msg-Id, await the PubAck.
	subject := stream.NewNames(ns).EventSubject(event.DataUsage)
	b.Run("handler=baseline", func(b *testing.B) {
		serve(b, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, err := io.ReadAll(r.Body)
			if err != nil || !json.Valid(body) {
				http.Error(w, "bad request", http.StatusBadRequest)
				return
			}
			sum := sha256.Sum256(body)
			ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
			defer cancel()
			if _, err := js.Publish(ctx, subject, body, jetstream.WithMsgID(hex.EncodeToString(sum[:]))); err != nil {
				http.Error(w, "unavailable", http.StatusServiceUnavailable)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"received":true}`))
		}))
	})
}

// answering acknowledges every publish at once: no server, nothing kept.
type answering struct{}

var answered = &jetstream.PubAck{Stream: "bench", Sequence: 1}

func (answering) PublishMsg(context.Context, *nats.Msg, ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	return answered, nil
}

// benchWriter is the least a ResponseWriter can be: it keeps the status.
type benchWriter struct {
	header http.Header
	code   int
}

func (w *benchWriter) Header() http.Header { return w.header }

func (w *benchWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
}

func (w *benchWriter) Write(p []byte) (int, error) {
	w.WriteHeader(http.StatusOK)
	return len(p), nil
}

func (w *benchWriter) reset() {
	clear(w.header)
	w.code = 0
}
