package ingest

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/esimflow/esimflow/shared/admin"
	"github.com/esimflow/esimflow/shared/config"
	"github.com/esimflow/esimflow/shared/natstest"
	"github.com/esimflow/esimflow/shared/stream"
	"github.com/esimflow/esimflow/shared/testns"
	"github.com/nats-io/nats.go/jetstream"
)

func seeds(f *testing.F) {
	files, _ := filepath.Glob("../shared/event/testdata/*.json")
	for _, file := range files {
		b, err := os.ReadFile(file)
		if err == nil {
			f.Add(b, "application/json")
		}
	}
	f.Add([]byte("notifyType=ESIM_STATUS&iccid=1&esimStatus=IN_USE"), "application/x-www-form-urlencoded")
	f.Add([]byte(`{"notifyType":"CHECK_HEALTH","content":{}}`), "application/json")
	f.Add([]byte(`[[[[{}]]]]`), "text/plain")
}

// FuzzWebhook throws arbitrary bodies and content types at the handler,
// publishing to a real in-process JetStream: it must never panic, and must
// answer only with the statuses of its contract.
func FuzzWebhook(f *testing.F) {
	seeds(f)
	srv := natstest.StartEmbedded(f)
	js, err := jetstream.New(srv.Connect(f))
	if err != nil {
		f.Fatal(err)
	}
	ns := testns.New(f)
	cfg, err := config.Load(func(k string) string {
		return map[string]string{"ESIMFLOW_NAMESPACE": ns, "ESIMFLOW_INGEST_MAX_BODY": "8192"}[k]
	})
	if err != nil {
		f.Fatal(err)
	}
	if _, _, err := stream.Ensure(f.Context(), js, stream.NewNames(ns), stream.Limits{Replicas: 1, EventsMaxBytes: -1, MaxDeliver: 10}); err != nil {
		f.Fatal(err)
	}
	s, err := New(cfg, Deps{Publisher: js, Admin: admin.New(""), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		f.Fatal(err)
	}
	allowed := []int{200, 400, 413, 415, 503}
	f.Fuzz(func(t *testing.T, body []byte, contentType string) {
		r := httptest.NewRequest(http.MethodPost, "/webhooks/esim", bytes.NewReader(body))
		r.Header.Set("Content-Type", contentType)
		w := httptest.NewRecorder()
		s.srv.Handler.ServeHTTP(w, r)
		if !slices.Contains(allowed, w.Code) {
			t.Fatalf("status %d for %q (%s)", w.Code, body, contentType)
		}
	})
}

// FuzzNormalize checks the content-type decoding alone: whatever it accepts
// is JSON no deeper than maxDepth.
func FuzzNormalize(f *testing.F) {
	seeds(f)
	f.Fuzz(func(t *testing.T, body []byte, contentType string) {
		r := httptest.NewRequest(http.MethodPost, "/webhooks/esim", nil)
		r.Header.Set("Content-Type", contentType)
		out, err := normalize(r, body, true)
		if err != nil {
			return
		}
		if depth(out) > maxDepth {
			t.Fatalf("accepted depth %d", depth(out))
		}
	})
}
