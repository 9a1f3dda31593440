package harness

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
)

// Infra is the harness's own NATS and Redis: never the shared servers on
// 4222/6379, whose other users would both disturb the figures and be disturbed.
type Infra struct {
	NATSURL  string
	RedisURL string
	nats     *Process
	redis    *Process
}

// StartInfra starts nats-server with JetStream (store under dir) and
// redis-server without persistence, each on a free loopback port.
func StartInfra(ctx context.Context, dir, natsBin, redisBin string) (*Infra, error) {
	in := &Infra{}
	natsPort, err := freePort()
	if err != nil {
		return nil, err
	}
	store := filepath.Join(dir, "jetstream")
	if err := os.MkdirAll(store, 0o755); err != nil {
		return nil, fmt.Errorf("nats store: %w", err)
	}
	in.nats, err = Start(dir, "nats-server", natsBin,
		[]string{"-a", "127.0.0.1", "-p", strconv.Itoa(natsPort), "-js", "-sd", store}, nil)
	if err != nil {
		return nil, err
	}
	addr := "127.0.0.1:" + strconv.Itoa(natsPort)
	if err := waitTCP(ctx, in.nats, addr); err != nil {
		in.Stop()
		return nil, err
	}
	in.NATSURL = "nats://" + addr

	redisPort, err := freePort()
	if err != nil {
		in.Stop()
		return nil, err
	}
	in.redis, err = Start(dir, "redis-server", redisBin, []string{
		"--bind", "127.0.0.1", "--port", strconv.Itoa(redisPort), "--dir", dir,
		"--save", "", "--appendonly", "no", "--maxmemory-policy", "noeviction",
	}, nil)
	if err != nil {
		in.Stop()
		return nil, err
	}
	addr = "127.0.0.1:" + strconv.Itoa(redisPort)
	if err := waitTCP(ctx, in.redis, addr); err != nil {
		in.Stop()
		return nil, err
	}
	in.RedisURL = "redis://" + addr
	return in, nil
}

// Stop ends both servers.
func (in *Infra) Stop() {
	if in.nats != nil {
		in.nats.Stop()
	}
	if in.redis != nil {
		in.redis.Stop()
	}
}
