package chaos

import (
	"context"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// readAttempts bounds readStream's tries.
const readAttempts = 10

// readStream returns every message of a stream, oldest first. It tries
// again with a new reader when a read fails: on a cluster, the ordered
// consumer behind it is created on one server and its first pull can reach
// another before the consumer's interest has (nats: no responders), or
// land in a leader change.
func readStream(ctx context.Context, js jetstream.JetStream, name string) ([]jetstream.Msg, error) {
	var err error
	for range readAttempts {
		var msgs []jetstream.Msg
		if msgs, err = readStreamOnce(ctx, js, name); err == nil {
			return msgs, nil
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(2 * time.Second):
		}
	}
	return nil, err
}
