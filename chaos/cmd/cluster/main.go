// Command cluster starts a local NATS JetStream cluster (three nodes) and a
// Redis Cluster (three primaries, one replica each) on loopback ports, prints
// the settings that point esimflow at them, and runs until interrupted; the
// data goes with it unless -keep.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/esimflow/esimflow/shared/clustertest"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "cluster:", err)
		os.Exit(1)
	}
}

func run() error {
	natsBin := flag.String("nats-server", clustertest.SystemNATS, "nats-server program")
	redisBin := flag.String("redis-server", clustertest.SystemRedis, "redis-server program")
	redisCLI := flag.String("redis-cli", clustertest.SystemRedisCLI, "redis-cli program")
	keep := flag.Bool("keep", false, "keep the data directories and logs")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	dir, err := os.MkdirTemp("", "esimflow-cluster-")
	if err != nil {
		return err
	}
	if !*keep {
		defer os.RemoveAll(dir)
	}
	ports, err := clustertest.NewPorts()
	if err != nil {
		return err
	}
	start, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	n, err := clustertest.StartNATS(start, clustertest.NATSOptions{Bin: *natsBin, Dir: dir + "/nats", Ports: ports, SyncAlways: true})
	if err != nil {
		return err
	}
	defer n.Close()
	r, err := clustertest.StartRedis(start, clustertest.RedisOptions{Bin: *redisBin, CLI: *redisCLI, Dir: dir + "/redis", Ports: ports})
	if err != nil {
		return err
	}
	defer r.Close()
	fmt.Printf("NATS JetStream cluster (%s): %s\n", *natsBin, n.URL)
	fmt.Printf("Redis Cluster, 3 primaries + 3 replicas: %s\n", strings.Join(r.Addrs(), " "))
	fmt.Printf("data and logs in %s\n\n", dir)
	fmt.Printf("export ESIMFLOW_NATS_URL=%s\n", n.URL)
	fmt.Printf("export ESIMFLOW_STREAM_REPLICAS=3\n")
	fmt.Printf("export ESIMFLOW_REDIS_URL=%s\n\n", r.URL)
	fmt.Println("Ctrl-C stops both clusters.")
	<-ctx.Done()
	return nil
}
