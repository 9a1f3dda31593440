//go:build !failpoints

package ingest

import (
	"net/http"
	"reflect"
	"testing"

	"github.com/esimflow/esimflow/shared/stream"
	"github.com/nats-io/nats.go/jetstream"
)

// TestNoFailpointDecorators: without the failpoints tag, New installs the
// chaos suite's decorators as the identity — a 200 still waits for the
// PubAck of the production publisher.
func TestNoFailpointDecorators(t *testing.T) {
	var pub Publisher = jetstream.JetStream(nil)
	routes := http.NotFoundHandler()
	if failpointPublisher(pub, stream.NewNames("")) != pub ||
		reflect.ValueOf(failpointRoutes(routes)).Pointer() != reflect.ValueOf(routes).Pointer() {
		t.Error("a failpoint decorator wraps the publisher or the routes")
	}
}
