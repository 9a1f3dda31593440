// Command connectpeer is the Redpanda Connect peer of `make bench`
// (BENCH_PEERS=1): the stream processor built with only the components the
// webhook pipeline needs — http_server, nats_jetstream, dedupe, the redis
// cache and redis_hash — which builds in a fraction of the full
// distribution's time. It is Benthos v4.27.0, the last release under
// Redpanda Connect's former name with these same components: the module
// proxy this was built against serves no github.com/redpanda-data/connect/v4
// source. Its own module, outside go.work: build it with GOWORK=off (the
// harness does). The harness writes its configuration; see
// bench/harness/peer.go.
package main

import (
	"context"

	_ "github.com/benthosdev/benthos/v4/public/components/io"
	_ "github.com/benthosdev/benthos/v4/public/components/nats"
	_ "github.com/benthosdev/benthos/v4/public/components/pure"
	_ "github.com/benthosdev/benthos/v4/public/components/redis"
	"github.com/benthosdev/benthos/v4/public/service"
)

func main() { service.RunCLI(context.Background()) }
