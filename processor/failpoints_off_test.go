//go:build !failpoints

package processor

import (
	"reflect"
	"testing"

	"github.com/esimflow/esimflow/shared/store/kvstore"
	"github.com/nats-io/nats.go/jetstream"
)

// TestNoFailpointDecorators: without the failpoints tag, New installs the
// chaos suite's decorators as the identity — the store, publisher and
// handlers the pipeline runs are the production ones.
func TestNoFailpointDecorators(t *testing.T) {
	var st Store = &kvstore.Store{}
	var pub Publisher = jetstream.JetStream(nil)
	h := &Handler{}
	if failpointStore(st) != st || failpointPublisher(pub) != pub {
		t.Error("a failpoint decorator wraps the store or the publisher")
	}
	if reflect.ValueOf(failpointHandler(h.Handle)).Pointer() != reflect.ValueOf(h.Handle).Pointer() ||
		reflect.ValueOf(failpointBatchHandler(h.HandleBatch)).Pointer() != reflect.ValueOf(h.HandleBatch).Pointer() {
		t.Error("a failpoint decorator wraps the handlers")
	}
}
