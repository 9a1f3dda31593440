//go:build !failpoints

package ingest

import (
	"net/http"

	"github.com/esimflow/esimflow/shared/stream"
)

// Without the failpoints tag the chaos suite's decorators are the identity:
// production builds carry neither its crash points nor its planted bugs.

func failpointPublisher(p Publisher, _ stream.Names) Publisher { return p }
func failpointRoutes(h http.Handler) http.Handler              { return h }
