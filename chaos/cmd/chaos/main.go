// Command chaos runs the chaos suite: the services as separate processes
// against their own NATS and Redis, a provider's load with duplicates,
// reordering and retries, a seeded schedule of faults, and an oracle.
// It exits non-zero on any violation and prints the seed to replay it.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"slices"
	"syscall"
	"time"

	"github.com/esimflow/esimflow/chaos"
)

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		os.Exit(2)
	}
}

func run() error {
	duration := flag.Duration("duration", 90*time.Second, "load and faults, in all (split between the servers with -nats both)")
	seed := flag.Uint64("seed", 0, "seed of the lifecycles and the fault schedule; 0 = from the clock")
	server := flag.String("nats", "both", "NATS server: system (/usr/sbin/nats-server), newest (built from the workspace's pin), or both")
	clustered := flag.Bool("cluster", false, "run on a 3-node JetStream cluster (R3) and a Redis Cluster (3 primaries + 3 replicas), with the cluster faults")
	keep := flag.Bool("keep", false, "keep the data directories and logs")
	drop := flag.Float64("drop", 0, "share of webhooks the provider never sends (the webhook-drop fault), 0 to 1")
	verbose := flag.Bool("v", false, "log progress")
	flag.Parse()
	drawn := ""
	if *seed == 0 {
		*seed, drawn = uint64(time.Now().UnixNano()%1_000_000), " (from the clock)"
	}
	cluster := ""
	if *clustered {
		cluster = " CLUSTER=1"
	}
	fmt.Printf("chaos: seed %d%s; replay: make chaos SEED=%d NATS=%s DURATION=%v%s\n", *seed, drawn, *seed, *server, *duration, cluster)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	level := slog.LevelWarn
	if *verbose {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))

	servers := []string{*server}
	if *server == "both" {
		servers = []string{"system", "newest"}
	}
	work, err := os.MkdirTemp("", "esimflow-chaos-")
	if err != nil {
		return err
	}
	// Removed at the end unless -keep or a run failed (decided then).
	defer func() {
		if !*keep {
			os.RemoveAll(work)
		}
	}()
	bins, err := build(ctx, work, servers)
	if err != nil {
		return err
	}
	failed := false
	for _, s := range servers {
		cfg := chaos.Config{Duration: *duration / time.Duration(len(servers)), Seed: *seed, Server: s, Bins: bins[s],
			Dir: filepath.Join(work, s), Faults: true, Cluster: *clustered, Drop: *drop, Log: log}
		fmt.Printf("chaos: %s NATS, %v, seed %d (logs in %s)\n", s, cfg.Duration, *seed, cfg.Dir)
		rep, err := chaos.Run(ctx, cfg)
		if err != nil {
			*keep = true
			return fmt.Errorf("%s: %w (seed %d; logs kept in %s)", s, err, *seed, work)
		}
		rep.Print(os.Stdout)
		if rep.Failed() {
			failed = true
			*keep = true
		}
	}
	if failed {
		fmt.Printf("chaos: FAILED — replay with SEED=%d; logs kept in %s\n", *seed, work)
		os.Exit(1)
	}
	fmt.Println("chaos: all checks passed")
	return nil
}

// build compiles the services (and the newest nats-server when a run needs
// it) into work/bin, and returns the programs of a run against each server.
func build(ctx context.Context, work string, servers []string) (map[string]chaos.Binaries, error) {
	cwd, err := os.Getwd()
	if err != nil {
		return nil, err
	}
	root, err := chaos.WorkspaceRoot(cwd)
	if err != nil {
		return nil, err
	}
	natsServer, redisServer, err := chaos.FindBinaries()
	if err != nil {
		return nil, err
	}
	fmt.Printf("chaos: building the services (-tags failpoints) into %s\n", work)
	bins, newest, err := chaos.Build(ctx, root, filepath.Join(work, "bin"), slices.Contains(servers, "newest"))
	if err != nil {
		return nil, err
	}
	bins.Redis = redisServer
	bins.RedisCLI = filepath.Join(filepath.Dir(redisServer), "redis-cli")
	out := map[string]chaos.Binaries{}
	for _, s := range servers {
		b := bins
		b.NATS = natsServer
		if s == "newest" {
			b.NATS = newest
		}
		out[s] = b
	}
	return out, nil
}
