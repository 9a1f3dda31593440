// Command esimbench is the benchmark harness behind `make bench`: it measures
// every stage of esimflow against its baseline in one run, prints the Markdown
// table and writes it to bench/results/<date>.md (<date>-<hhmm>.md for a
// second run that day). BENCH_QUICK=1 makes a short
// smoke pass. `esimbench baseline-handler` is the baseline HTTP handler the
// harness starts as its own process.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/esimflow/esimflow/bench/harness"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	var err error
	if len(os.Args) > 1 && os.Args[1] == "baseline-handler" {
		err = baselineHandler(ctx, log, os.Args[2:])
	} else {
		err = bench(ctx)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "esimbench:", err)
		os.Exit(1)
	}
}

func baselineHandler(ctx context.Context, log *slog.Logger, args []string) error {
	fs := flag.NewFlagSet("baseline-handler", flag.ContinueOnError)
	addr := fs.String("addr", "127.0.0.1:0", "listen address")
	natsURL := fs.String("nats", "", "NATS URL")
	subject := fs.String("subject", "", "subject to publish to (inside a stream)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *natsURL == "" || *subject == "" {
		return errors.New("baseline-handler: -nats and -subject are required")
	}
	return harness.ServeBaseline(ctx, log, *addr, *natsURL, *subject)
}

// bench runs the harness from the repository root (where `make bench` runs
// it), with the binaries in ./bin.
func bench(ctx context.Context) error {
	cfg := harness.Defaults(os.Getenv("BENCH_QUICK") != "")
	repo, err := os.Getwd()
	if err != nil {
		return err
	}
	cfg.RepoDir = repo
	cfg.BinDir = envOr("BENCH_BIN", filepath.Join(repo, "bin"))
	if cfg.Self, err = os.Executable(); err != nil {
		return fmt.Errorf("own path: %w", err)
	}
	cfg.NATSBin = envOr("BENCH_NATS_SERVER", "/usr/sbin/nats-server")
	cfg.RedisBin = envOr("BENCH_REDIS_SERVER", "/usr/bin/redis-server")
	cfg.Peers = os.Getenv("BENCH_PEERS") != ""
	cfg.Profile = os.Getenv("BENCH_PROFILE") != ""
	if only := os.Getenv("BENCH_ONLY"); only != "" {
		cfg.Only = strings.Split(only, ",")
	}
	cfg.ConnectDir = filepath.Join(repo, "bench", "connectpeer")
	cfg.NodeBin, _ = exec.LookPath("node")
	cfg.NPMBin, _ = exec.LookPath("npm")
	for _, bin := range []string{cfg.NATSBin, cfg.RedisBin, filepath.Join(cfg.BinDir, "ingest"), filepath.Join(cfg.BinDir, "processor"),
		filepath.Join(cfg.BinDir, "notifier"), filepath.Join(cfg.BinDir, "esimflow")} {
		if _, err := os.Stat(bin); err != nil {
			return fmt.Errorf("%s is needed (make build puts esimflow's binaries in ./bin): %w", bin, err)
		}
	}
	if cfg.WorkDir, err = os.MkdirTemp("", "esimbench-"); err != nil {
		return err
	}
	keep := os.Getenv("BENCH_KEEP") != ""
	if !keep {
		defer os.RemoveAll(cfg.WorkDir)
	}
	cfg.Progress = os.Stderr
	fmt.Fprintf(os.Stderr, "esimbench: work dir %s (servers' logs; BENCH_KEEP=1 keeps it)\n", cfg.WorkDir)

	doc, err := harness.Run(ctx, cfg)
	if err != nil {
		return err
	}
	md := doc.Markdown()
	fmt.Print(md)
	out := resultsFile(filepath.Join(repo, "bench", "results"), time.Now().UTC())
	if cfg.Quick || len(cfg.Only) > 0 {
		// Not a full run: never over the dated, committed results.
		out = filepath.Join(repo, "bench", "results", "quick.md")
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(out, []byte(md), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", out, err)
	}
	fmt.Fprintf(os.Stderr, "esimbench: wrote %s\n", out)
	return nil
}

// resultsFile names a full run's table: <date>.md, or <date>-<hhmm>.md
// when that day has one already, so a second run keeps the first.
func resultsFile(dir string, now time.Time) string {
	out := filepath.Join(dir, now.Format("2006-01-02")+".md")
	if _, err := os.Stat(out); err == nil {
		out = filepath.Join(dir, now.Format("2006-01-02-1504")+".md")
	}
	return out
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}
