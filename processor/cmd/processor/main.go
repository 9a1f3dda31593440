// Command processor consumes ESIM_EVENTS into order/profile state; run as many
// as load needs against the same NATS and store.
package main

import (
	"context"

	"github.com/esimflow/esimflow/processor"
	"github.com/esimflow/esimflow/shared/service"
	"github.com/esimflow/esimflow/shared/storeopen"
	"github.com/esimflow/esimflow/shared/stream"
)

// gcPercent is the processor's garbage-collection target unless GOGC is set:
// it allocates per event (the event, the state it reads and writes, the
// intents) and keeps little, so at Go's default (100) the collector ran
// many times a second during a backlog's drain (12 % of the CPU in marking,
// 6 % returning and refaulting heap pages). Measured on the harness's drain
// (docs/performance.md), interleaved: CPU per event 39–47 → 31–33 µs, peak
// RSS 33.5 → 49 MiB; GOGC=800 saved no more CPU (30–33 µs) for 68 MiB.
const gcPercent = 400

func main() {
	service.Main(service.Options{Name: "processor", GC: service.GC{Percent: gcPercent}}, func(ctx context.Context, env *service.Env) (service.Part, error) {
		cons, err := env.Consumer(ctx, stream.ProcessorConsumer)
		if err != nil {
			return nil, err
		}
		st, closeStore, err := storeopen.Open(ctx, env.Cfg.Store, env.NATS.JS)
		if err != nil {
			return nil, err
		}
		env.OnClose(closeStore)
		s, err := processor.New(env.Cfg.Processor, processor.Deps{
			Consumer: cons, Publisher: env.NATS.JS, Streams: env.NATS.JS, Subscriber: env.NATS.NC, Wake: env.NATS.NC,
			Store: st, Admin: env.Admin, Logger: env.Log, Tracer: env.Tracer,
		})
		if err != nil {
			return nil, err
		}
		return s.Run, nil
	})
}
