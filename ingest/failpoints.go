//go:build failpoints

package ingest

import (
	"context"
	"net/http"
	"sync"

	"github.com/esimflow/esimflow/shared/failpoint"
	"github.com/esimflow/esimflow/shared/stream"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The chaos suite's planted bug bug-ok-before-puback (see shared/failpoint
// and chaos/bugs_test.go), which breaks invariant 1 (docs/design.md,
// "Invariants"): the webhook is answered 200 when its publish starts, before
// the PubAck, and the crash point after-ok can kill ingest in between. Only
// builds with the failpoints tag have it: failpointRoutes hands each request
// a writer that can answer early, and failpointPublisher answers with it.

// earlyWriter answers a request at most once: after an early answer, what
// the handler writes is dropped.
type earlyWriter struct {
	http.ResponseWriter
	mu       sync.Mutex
	answered bool
}

type earlyWriterKey struct{}

func failpointRoutes(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ew := &earlyWriter{ResponseWriter: w}
		h.ServeHTTP(ew, r.WithContext(context.WithValue(r.Context(), earlyWriterKey{}, ew)))
	})
}

// answerEarly answers 200 now, and reports whether it did.
func (w *earlyWriter) answerEarly() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.answered {
		return false
	}
	answerReceived(w.ResponseWriter)
	_ = http.NewResponseController(w.ResponseWriter).Flush()
	w.answered = true
	return true
}

func (w *earlyWriter) dropped() bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.answered
}

func (w *earlyWriter) WriteHeader(code int) {
	if !w.dropped() {
		w.ResponseWriter.WriteHeader(code)
	}
}

func (w *earlyWriter) Write(b []byte) (int, error) {
	if w.dropped() {
		return len(b), nil
	}
	return w.ResponseWriter.Write(b)
}

func (w *earlyWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

type plantedPublisher struct {
	Publisher
	rejected string // the subject of rejected bodies, answered 400 whatever happens
}

func failpointPublisher(p Publisher, names stream.Names) Publisher {
	return plantedPublisher{Publisher: p, rejected: names.RejectedSubject()}
}

func (p plantedPublisher) PublishMsg(ctx context.Context, msg *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	if ew, ok := ctx.Value(earlyWriterKey{}).(*earlyWriter); ok && msg.Subject != p.rejected &&
		failpoint.Enabled("bug-ok-before-puback") && ew.answerEarly() {
		failpoint.Inject("after-ok")
	}
	return p.Publisher.PublishMsg(ctx, msg, opts...)
}
