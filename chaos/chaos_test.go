package chaos_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/esimflow/esimflow/chaos"
)

// built compiles the services (and the newest nats-server) once per test binary.
var built = sync.OnceValues(func() (chaos.Binaries, error) {
	natsServer, redisServer, err := chaos.FindBinaries()
	if err != nil {
		return chaos.Binaries{}, err
	}
	cwd, err := os.Getwd()
	if err != nil {
		return chaos.Binaries{}, err
	}
	root, err := chaos.WorkspaceRoot(cwd)
	if err != nil {
		return chaos.Binaries{}, err
	}
	dir, err := os.MkdirTemp("", "esimflow-chaos-bin-")
	if err != nil {
		return chaos.Binaries{}, err
	}
	b, newest, err := chaos.Build(context.Background(), root, dir, true)
	if err != nil {
		return b, err
	}
	b.Redis = redisServer
	b.NATS = natsServer + "|" + newest // split by binariesFor
	return b, nil
})

// binariesFor returns the programs of a run against server.
func binariesFor(t *testing.T, server string) chaos.Binaries {
	t.Helper()
	if testing.Short() {
		t.Skip("chaos runs take a minute or more; skipped with -short")
	}
	b, err := built()
	if errors.Is(err, chaos.ErrNoServer) {
		t.Skipf("needs nats-server and redis-server installed: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	system, newest, _ := strings.Cut(b.NATS, "|")
	b.NATS = system
	if server == "newest" {
		b.NATS = newest
	}
	return b
}

// make test's chaos run is the same schedule every time: this seed (the
// one issue 12's flaky run had) against the NATS server the workspace pins.
// ESIMFLOW_CHAOS_SEED and ESIMFLOW_CHAOS_NATS=system|newest choose others;
// make chaos draws its seed from the clock.
const (
	defaultSeed   = 149248
	defaultServer = "newest"
)

// seed returns ESIMFLOW_CHAOS_SEED, else defaultSeed.
func seed(t *testing.T) uint64 {
	t.Helper()
	s := os.Getenv("ESIMFLOW_CHAOS_SEED")
	if s == "" {
		return defaultSeed
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		t.Fatalf("ESIMFLOW_CHAOS_SEED=%q: %v", s, err)
	}
	return v
}

// server returns ESIMFLOW_CHAOS_NATS, else defaultServer.
func server(t *testing.T) string {
	t.Helper()
	switch s := os.Getenv("ESIMFLOW_CHAOS_NATS"); s {
	case "":
		return defaultServer
	case "system", "newest":
		return s
	default:
		t.Fatalf("ESIMFLOW_CHAOS_NATS=%q: want system or newest", s)
		return ""
	}
}

// TestChaos is the short run of make test: 45 s of load and faults against
// one NATS server, then the oracle; the seed and the server are fixed
// (defaultSeed, defaultServer) unless the environment names others.
func TestChaos(t *testing.T) {
	const duration = 45 * time.Second
	seed, server := seed(t), server(t)
	t.Logf("chaos: seed %d, NATS %s; replay with ESIMFLOW_CHAOS_SEED=%d ESIMFLOW_CHAOS_NATS=%s go test -run '^TestChaos$' ./chaos/, or make chaos SEED=%d NATS=%s DURATION=%v",
		seed, server, seed, server, seed, server, duration)
	bins := binariesFor(t, server)
	cfg := chaos.Config{Duration: duration, Seed: seed, Server: server, Bins: bins,
		Dir: filepath.Join(t.TempDir(), server), Faults: true}
	rep, err := chaos.Run(t.Context(), cfg)
	if err != nil {
		keepLogs(t, cfg.Dir)
		t.Fatalf("seed %d: %v", cfg.Seed, err)
	}
	var out strings.Builder
	rep.Print(&out)
	t.Log("\n" + out.String() + "\nfaults:\n" + rep.Timeline)
	if rep.Failed() {
		keepLogs(t, cfg.Dir)
		t.Errorf("%d violations; replay with ESIMFLOW_CHAOS_SEED=%d ESIMFLOW_CHAOS_NATS=%s", len(rep.Violations), cfg.Seed, server)
	}
}

// keepLogs copies a failed run's logs out of the test's temporary directory.
func keepLogs(t *testing.T, dir string) {
	t.Helper()
	dst, err := os.MkdirTemp("", "esimflow-chaos-logs-")
	if err != nil {
		return
	}
	if err := os.CopyFS(dst, os.DirFS(filepath.Join(dir, "logs"))); err == nil {
		t.Logf("logs kept in %s", dst)
	}
}
