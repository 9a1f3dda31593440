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

func main() {
	service.Main(service.Options{Name: "processor"}, func(ctx context.Context, env *service.Env) (service.Part, error) {
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
