// Command ingest runs the webhook receiver against an external NATS.
package main

import (
	"context"

	"github.com/esimflow/esimflow/ingest"
	"github.com/esimflow/esimflow/shared/service"
)

// gcPercent is ingest's garbage-collection target unless GOGC is set: it
// allocates per request and keeps little, so at Go's default (100) the
// collector runs every few milliseconds under load. Measured with wrk at 64
// connections: 42–43 → 38–40 CPU µs per request, peak RSS 27 → 30 MiB.
const gcPercent = 200

// memoryLimit is ingest's soft memory limit unless GOMEMLIMIT is set
// (GOMEMLIMIT=off removes it): peak RSS under a full load ≤ 40 MiB, of which
// 16–17 MiB are the binary's own pages. At GOGC=200 the heap may grow to
// three times what a collection found live; the limit caps that when more
// is live than usual (bodies in flight, a growth of the replay cache's
// ring during a collection). Measured: peak RSS 36–38 MiB, the collector
// about as often (0.9 cycles per thousand requests) and as costly per
// request as at GOGC=200 alone, half of GOGC=100's (docs/adr/0014).
const memoryLimit = 24 << 20

func main() {
	service.Main(service.Options{Name: "ingest", GC: service.GC{Percent: gcPercent, MemoryLimit: memoryLimit}}, func(_ context.Context, env *service.Env) (service.Part, error) {
		s, err := ingest.New(env.Cfg.Ingest, ingest.Deps{Publisher: env.NATS.JS, Admin: env.Admin, Logger: env.Log, Tracer: env.Tracer})
		if err != nil {
			return nil, err
		}
		return s.Run, nil
	})
}
