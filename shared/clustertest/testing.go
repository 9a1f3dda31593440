package clustertest

import (
	"context"
	"os"
	"testing"
	"time"
)

// Variables that point the helpers at other server binaries.
const (
	EnvNATSServer  = "ESIMFLOW_TEST_NATS_SERVER"
	EnvRedisServer = "ESIMFLOW_TEST_REDIS_SERVER"
)

// NATSCluster starts a three-node JetStream cluster for the test, stopped
// when it ends, data in t.TempDir(); it skips the test without nats-server.
func NATSCluster(t testing.TB) *NATS {
	t.Helper()
	bin := binary(t, EnvNATSServer, SystemNATS)
	ports, err := NewPorts()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	dir := t.TempDir()
	n, err := StartNATS(ctx, NATSOptions{Bin: bin, Dir: dir, Ports: ports, SyncAlways: true})
	if err != nil {
		t.Fatalf("clustertest: nats cluster: %v", err)
	}
	t.Cleanup(n.Close)
	return n
}

// RedisCluster starts a Redis Cluster of three primaries with one replica
// each for the test, stopped when it ends, data in t.TempDir(); it skips
// the test without redis-server or redis-cli.
func RedisCluster(t testing.TB) *Redis {
	t.Helper()
	bin := binary(t, EnvRedisServer, SystemRedis)
	ports, err := NewPorts()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r, err := StartRedis(ctx, RedisOptions{Bin: bin, CLI: binary(t, "", SystemRedisCLI), Dir: t.TempDir(), Ports: ports, NodeTimeout: time.Second})
	if err != nil {
		t.Fatalf("clustertest: redis cluster: %v", err)
	}
	t.Cleanup(r.Close)
	return r
}

// binary returns the program env names, else def; it skips the test when
// the program is not there.
func binary(t testing.TB, env, def string) string {
	t.Helper()
	bin := def
	if env != "" && os.Getenv(env) != "" {
		bin = os.Getenv(env)
	}
	if _, err := os.Stat(bin); err != nil {
		t.Skipf("no %s for a local cluster (%v)", bin, err)
	}
	return bin
}
