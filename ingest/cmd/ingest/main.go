// Command ingest runs the webhook receiver against an external NATS.
package main

import (
	"github.com/esimflow/esimflow/ingest"
	"github.com/esimflow/esimflow/shared/service"
)

func main() {
	service.Main(service.Options{Name: "ingest"}, func(env *service.Env) (service.Part, error) {
		s, err := ingest.New(env.Cfg, ingest.Deps{Publisher: env.NATS.JS, Admin: env.Admin, Logger: env.Log, Tracer: env.Tracer})
		if err != nil {
			return nil, err
		}
		return s.Run, nil
	})
}
