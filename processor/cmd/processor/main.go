// Command processor consumes ESIM_EVENTS into order/profile state; run as many
// as load needs against the same NATS and store.
package main

import (
	"github.com/esimflow/esimflow/processor"
	"github.com/esimflow/esimflow/shared/service"
)

func main() {
	service.Main(service.Options{Name: "processor", Store: true}, func(env *service.Env) (service.Part, error) {
		s, err := processor.New(env.Cfg, processor.Deps{
			Consumer: env.Events, Publisher: env.NATS.JS, Streams: env.NATS.JS, Subscriber: env.NATS.NC,
			Store: env.Store, Admin: env.Admin, Logger: env.Log, Tracer: env.Tracer,
		})
		if err != nil {
			return nil, err
		}
		return s.Run, nil
	})
}
