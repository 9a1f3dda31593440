package ingest

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/esimflow/esimflow/ingest/verify"
	"github.com/esimflow/esimflow/shared/admin"
	"github.com/esimflow/esimflow/shared/config"
	"github.com/esimflow/esimflow/shared/natstest"
	"github.com/esimflow/esimflow/shared/stream"
	"github.com/esimflow/esimflow/shared/testns"
	"github.com/nats-io/nats.go/jetstream"
)

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkWebhook measures a request through the handler to the PubAck of a
// real in-process JetStream, without and with every check configured (path
// token, Standard Webhooks HMAC, IP allowlist behind a trusted proxy). It
// reports process CPU per request (server and JetStream together); the
// difference between the two is what verification costs.
func BenchmarkWebhook(b *testing.B) {
	secret := "whsec_" + base64.StdEncoding.EncodeToString([]byte("bench-signing-key-0123456789"))
	srv := natstest.StartEmbedded(b)
	js, err := jetstream.New(srv.Connect(b))
	if err != nil {
		b.Fatal(err)
	}
	for _, verified := range []bool{false, true} {
		b.Run(fmt.Sprintf("verified=%v", verified), func(b *testing.B) {
			ns := testns.New(b)
			env := map[string]string{"ESIMFLOW_NAMESPACE": ns}
			if verified {
				env["ESIMFLOW_INGEST_TOKENS"] = "tok-a,tok-b"
				env["ESIMFLOW_INGEST_HMAC_SECRETS"] = secret
				env["ESIMFLOW_INGEST_ALLOW_CIDRS"] = "203.0.113.0/24"
				env["ESIMFLOW_INGEST_TRUSTED_PROXIES"] = "192.0.2.0/24"
			}
			s, _ := serverOn(b, js, env)
			sw, _ := verify.NewStandardWebhooks([]string{secret}, time.Minute, time.Now)
			h := s.srv.Handler
			// ~300-byte bodies, each a distinct event, as in the reference figures.
			bodies := make([][]byte, 4096)
			for i := range bodies {
				bodies[i] = []byte(fmt.Sprintf(`{"eventType":"DATA_USAGE","iccid":"89012345678901%05d","usedVolume":%d,"totalVolume":1073741824,"usagePercent":80,"timestamp":"2024-01-16T08:00:00Z","note":"padding padding padding padding padding padding padding padding padding padding padding pad"}`, i, 859832320+i))
			}
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := cpuTime()
			for i := 0; i < b.N; i++ {
				body := bodies[i%len(bodies)]
				r := httptest.NewRequest(http.MethodPost, "/webhooks/esim/tok-b", bytes.NewReader(body))
				r.RemoteAddr = "192.0.2.10:40000"
				r.Header.Set("Content-Type", "application/json")
				if verified {
					now := time.Now()
					id := "msg_" + strconv.Itoa(i)
					r.Header.Set("X-Forwarded-For", "203.0.113.9")
					r.Header.Set("webhook-id", id)
					r.Header.Set("webhook-timestamp", strconv.FormatInt(now.Unix(), 10))
					r.Header.Set("webhook-signature", sw.Sign(id, now, body))
				}
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				if w.Code != 200 {
					b.Fatalf("status %d: %s", w.Code, w.Body)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
		})
	}
}

// BenchmarkVerify is the verification alone: what the checks cost per
// request, without publishing.
func BenchmarkVerify(b *testing.B) {
	secret := "whsec_" + base64.StdEncoding.EncodeToString([]byte("bench-signing-key-0123456789"))
	sw, _ := verify.NewStandardWebhooks([]string{secret, secret}, time.Minute, time.Now)
	body := bytes.Repeat([]byte("x"), 300)
	now := time.Now()
	r := httptest.NewRequest(http.MethodPost, "/webhooks/esim/tok-b", nil)
	r.Header.Set("webhook-id", "msg_1")
	r.Header.Set("webhook-timestamp", strconv.FormatInt(now.Unix(), 10))
	r.Header.Set("webhook-signature", sw.Sign("msg_1", now, body))
	all := verify.All{verify.NewTokens([]string{"tok-a", "tok-b"}), sw}
	b.ReportAllocs()
	for b.Loop() {
		if err := all.Verify(verify.Request{HTTP: r, Token: "tok-b", Body: body}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkProviderWebhook is BenchmarkWebhook through a provider's
// adapter: eSIM Go usage bodies (~230 bytes, each a distinct event) to
// /webhooks/esimgo, each signed with HMAC-SHA256 and read by its mapping
// file, to the PubAck of a real in-process JetStream.
func BenchmarkProviderWebhook(b *testing.B) {
	srv := natstest.StartEmbedded(b)
	js, err := jetstream.New(srv.Connect(b))
	if err != nil {
		b.Fatal(err)
	}
	ns := testns.New(b)
	s, _ := serverOn(b, js, map[string]string{"ESIMFLOW_NAMESPACE": ns, "ESIMFLOW_PROVIDER_SECRETS": "esimgo=bench-key"})
	h := s.srv.Handler
	bodies := make([][]byte, 4096)
	sigs := make([]string, len(bodies))
	for i := range bodies {
		bodies[i] = []byte(fmt.Sprintf(`{"iccid":"89012345678901%05d","alertType":"Utilisation","bundle":{"name":"A_BUNDLE_1GB","initialQuantity":1000000000,"remainingQuantity":%d,"startTime":"2026-01-02T15:04:05Z","endTime":"2027-01-02T15:04:05Z"}}`, i, 200000000+i))
		sigs[i] = verify.NewHeaderHMAC("X-Signature-SHA256", "hex", []string{"bench-key"}).Sign(bodies[i])
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	for i := 0; i < b.N; i++ {
		r := httptest.NewRequest(http.MethodPost, "/webhooks/esimgo", bytes.NewReader(bodies[i%len(bodies)]))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("X-Signature-SHA256", sigs[i%len(bodies)])
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != 200 {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/op")
}

// serverOn is ingest as env configures it (ESIMFLOW_NAMESPACE included),
// its streams made on js, logs discarded; and that configuration.
func serverOn(tb testing.TB, js jetstream.JetStream, env map[string]string) (*Service, config.Ingest) {
	tb.Helper()
	cfg, err := config.Load(func(k string) string { return env[k] })
	if err != nil {
		tb.Fatal(err)
	}
	names := stream.NewNames(env["ESIMFLOW_NAMESPACE"])
	if _, _, err := stream.Ensure(tb.Context(), js, names, stream.Limits{Replicas: 1, EventsMaxBytes: -1, MaxDeliver: 10}); err != nil {
		tb.Fatal(err)
	}
	s, err := New(cfg.Ingest, Deps{Publisher: js, Admin: admin.New(""), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		tb.Fatal(err)
	}
	return s, cfg.Ingest
}
