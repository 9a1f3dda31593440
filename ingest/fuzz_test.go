package ingest

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/esimflow/esimflow/shared/natstest"
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
	s, _ := serverOn(f, js, map[string]string{"ESIMFLOW_NAMESPACE": testns.New(f), "ESIMFLOW_INGEST_MAX_BODY": "8192"})
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

// FuzzForm checks the form and query-string forms (the eSIM Access test
// tool's): where nothing is signed, a form or query string accepted becomes
// one JSON object no deeper than maxDepth (a JSON body passes as it is, for
// the decoder to judge); where a signature is configured, neither form is
// ever accepted, and a body is stored byte for byte.
func FuzzForm(f *testing.F) {
	f.Add("notifyType=ESIM_STATUS&iccid=1&esimStatus=IN_USE", []byte(nil), "application/json")
	f.Add("", []byte("notifyType=ORDER_STATUS&content=%7B%22orderNo%22%3A%22B1%22%7D"), "application/x-www-form-urlencoded")
	f.Add("notifyType=X&content=[[[[1]]]]", []byte(nil), "")
	f.Add("a=1&a=2&b=%7B%7D", []byte(`{"eventType":"X"}`), "application/json; charset=utf-8")
	f.Fuzz(func(t *testing.T, query string, body []byte, contentType string) {
		r := httptest.NewRequest(http.MethodPost, "/webhooks/esim", nil)
		r.URL.RawQuery = query
		r.Header.Set("Content-Type", contentType)
		if out, err := normalize(r, body, true); err == nil {
			var obj map[string]json.RawMessage
			if !bytes.Equal(out, body) && json.Unmarshal(out, &obj) != nil {
				t.Fatalf("form %q %q became %q: not a JSON object", query, body, out)
			}
			if depth(out) > maxDepth {
				t.Fatalf("accepted depth %d", depth(out))
			}
		}
		out, err := normalize(r, body, false)
		if err == nil && !bytes.Equal(out, body) {
			t.Fatalf("signed mode stored %q for the signed body %q", out, body)
		}
	})
}
