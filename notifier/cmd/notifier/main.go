// Command notifier sends customer messages from ESIM_NOTIFY, once per intent.
package main

import (
	"os"

	"github.com/esimflow/esimflow/notifier"
	"github.com/esimflow/esimflow/shared/service"
)

func main() {
	service.Main(service.Options{Name: "notifier", Store: true}, func(env *service.Env) (service.Part, error) {
		s, err := notifier.New(env.Cfg, notifier.Deps{
			Consumer: env.Notify, Publisher: env.NATS.JS, Store: env.Store,
			Console: os.Stdout, Admin: env.Admin, Logger: env.Log, Tracer: env.Tracer,
		})
		if err != nil {
			return nil, err
		}
		return s.Run, nil
	})
}
