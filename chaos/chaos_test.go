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

func seed(t *testing.T) uint64 {
	if s := os.Getenv("ESIMFLOW_CHAOS_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			t.Fatalf("ESIMFLOW_CHAOS_SEED: %v", err)
		}
		return v
	}
	return uint64(time.Now().UnixNano() % 1_000_000)
}

// TestChaos is the short run of make test: 45 s of load and faults against
// one NATS server — the machine's 2.9.10 on even days of the year, the
// newest on odd ones (ESIMFLOW_CHAOS_NATS=system|newest picks one) — then
// the oracle.
func TestChaos(t *testing.T) {
	server := os.Getenv("ESIMFLOW_CHAOS_NATS")
	if server == "" {
		server = []string{"system", "newest"}[time.Now().YearDay()%2]
	}
	bins := binariesFor(t, server)
	cfg := chaos.Config{Duration: 45 * time.Second, Seed: seed(t), Server: server, Bins: bins,
		Dir: filepath.Join(t.TempDir(), server), Faults: true}
	rep, err := chaos.Run(t.Context(), cfg)
	if err != nil {
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
