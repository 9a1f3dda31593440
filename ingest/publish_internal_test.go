package ingest

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/esimflow/esimflow/shared/natstest"
	"github.com/esimflow/esimflow/shared/stream"
	"github.com/esimflow/esimflow/shared/testns"
	"github.com/nats-io/nats.go/jetstream"
)

// TestPublishOutlivesTheRequest: a sender that hangs up does not cut the
// publish short. Its request's context is canceled before the handler
// publishes; the event is stored all the same and answered 200 (to nobody),
// as it would be a moment later, so the sender's retry is a duplicate.
func TestPublishOutlivesTheRequest(t *testing.T) {
	srv := natstest.Start(t)
	js, err := jetstream.New(srv.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	ns := testns.New(t)
	srv.RemoveNamespace(t, ns)
	s, _ := serverOn(t, js, map[string]string{"ESIMFLOW_NAMESPACE": ns, "ESIMFLOW_HTTP_ADDR": "127.0.0.1:0"})
	names := stream.NewNames(ns)

	body := `{"eventType":"PROFILE_STATUS","iccid":"8906","currentStatus":"ACTIVATED","timestamp":"2024-01-15T14:00:00Z"}`
	hungUp, cancel := context.WithCancel(t.Context())
	cancel()
	r := httptest.NewRequestWithContext(hungUp, http.MethodPost, "/webhooks/esim", strings.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	w := httptest.NewRecorder()
	s.srv.Handler.ServeHTTP(w, r)
	if w.Code != http.StatusOK {
		t.Fatalf("status %d %s", w.Code, w.Body)
	}
	str, err := js.Stream(t.Context(), names.Stream(stream.Events))
	if err != nil {
		t.Fatal(err)
	}
	m, err := str.GetLastMsgForSubject(t.Context(), names.EventSubject("PROFILE_STATUS"))
	if err != nil || string(m.Data) != body {
		t.Fatalf("stored %v, err %v", m, err)
	}
}
