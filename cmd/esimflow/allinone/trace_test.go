package allinone_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/esimflow/esimflow/cmd/esimflow/allinone"
	"github.com/esimflow/esimflow/cmd/esimflow/allinone/allinonetest"
	"github.com/esimflow/esimflow/shared/poll"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
)

// TestTracePropagation: one webhook gives spans in ingest, processor and
// notifier that share one trace id, carried through the NATS headers of the
// stored event and of the intent.
func TestTracePropagation(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(t.Context()) })
	sys := allinonetest.Start(t, map[string]string{"ESIMFLOW_DATA_DIR": t.TempDir()},
		func(d *allinone.Deps) { d.Tracer = tp })

	resp, err := http.Post(sys.Hook, "application/json", strings.NewReader(
		`{"eventType":"PROFILE_STATUS","iccid":"8901777700000001","currentStatus":"ACTIVATED","timestamp":"2026-11-01T08:00:00Z"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	byName := map[string]sdktrace.ReadOnlySpan{}
	poll.Until(t, "spans of all three services", func() bool {
		for _, s := range exp.GetSpans().Snapshots() {
			byName[s.Name()] = s
		}
		return byName["ingest webhook"] != nil && byName["processor event"] != nil && byName["notifier send"] != nil && byName["notifier intent"] != nil
	})
	trace := byName["ingest webhook"].SpanContext().TraceID()
	for _, name := range []string{"processor event", "notifier intent", "notifier send"} {
		s := byName[name]
		if s == nil {
			t.Errorf("no %q span", name)
			continue
		}
		if s.SpanContext().TraceID() != trace {
			t.Errorf("%q is in trace %s, the webhook in %s", name, s.SpanContext().TraceID(), trace)
		}
	}
	if p := byName["processor event"].Parent(); p.SpanID() != byName["ingest webhook"].SpanContext().SpanID() {
		t.Errorf("processor span's parent %s is not the webhook span", p.SpanID())
	}
}
