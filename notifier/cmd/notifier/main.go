// Command notifier sends customer messages from ESIM_NOTIFY, once per intent.
package main

import (
	"context"
	"os"

	"github.com/esimflow/esimflow/notifier"
	"github.com/esimflow/esimflow/shared/service"
	"github.com/esimflow/esimflow/shared/storeopen"
	"github.com/esimflow/esimflow/shared/stream"
)

// gcPercent is the notifier's garbage-collection target unless GOGC is set,
// for the processor's reason (processor/cmd/processor): it allocates per
// message and keeps little. Measured on BenchmarkNotifierDrain
// (store=redis/contacts=order): 98–109 → 87–89 CPU µs per message.
const gcPercent = 400

func main() {
	service.Main(service.Options{Name: "notifier", GC: service.GC{Percent: gcPercent}}, func(ctx context.Context, env *service.Env) (service.Part, error) {
		cons, err := env.Consumer(ctx, stream.NotifierConsumer)
		if err != nil {
			return nil, err
		}
		st, closeStore, err := storeopen.Open(ctx, env.Cfg.Store, env.NATS.JS)
		if err != nil {
			return nil, err
		}
		env.OnClose(closeStore)
		s, err := notifier.New(env.Cfg.Notifier, notifier.Deps{
			Consumer: cons, Publisher: env.NATS.JS, Store: st,
			Console: os.Stdout, Admin: env.Admin, Logger: env.Log, Tracer: env.Tracer, Wake: env.NATS.NC,
		})
		if err != nil {
			return nil, err
		}
		return s.Run, nil
	})
}
