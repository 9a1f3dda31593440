// Command ingest runs the webhook receiver against an external NATS.
package main

import (
	"context"

	"github.com/esimflow/esimflow/ingest"
	"github.com/esimflow/esimflow/shared/service"
)

func main() {
	service.Main(service.Options{Name: "ingest"}, func(ctx context.Context, env *service.Env) error {
		return ingest.Run(ctx, env.Cfg, ingest.Deps{Publisher: env.NATS.JS, Admin: env.Admin, Logger: env.Log})
	})
}
