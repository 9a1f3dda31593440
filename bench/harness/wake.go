package harness

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"

	"github.com/esimflow/esimflow/bench/report"
)

// wakeBenchmarks are the Go benchmarks of a waiting message's latency
// (issue 16): on the all-in-one, and on the services as deployed against
// the harness's own NATS and Redis.
var wakeBenchmarks = []struct{ pkg, name, tag string }{
	{"./cmd/esimflow/allinone", "WakeLatency", "aio"},
	{"./cmd/esimflow/binaries", "WakeLatencyServices", "svc"},
}

// wakeRun measures, once per run, the time from storing the last thing a
// waiting activation needs (its contact, or its order's link) to its mail,
// by the Go benchmarks that drive it; each reports p50_ms and p99_ms.
func (h *Harness) wakeRun(ctx context.Context) error {
	n := "100x"
	if h.cfg.Quick {
		n = "20x"
	}
	for _, b := range wakeBenchmarks {
		cmd := exec.CommandContext(ctx, "go", "test", "-run", "^$", "-bench", "^Benchmark"+b.name+"$", "-benchtime", n, b.pkg)
		cmd.Dir = h.cfg.RepoDir
		cmd.Env = append(os.Environ(), "ESIMFLOW_TEST_NATS_URL="+h.infra.NATSURL, "ESIMFLOW_TEST_REDIS_URL="+h.infra.RedisURL)
		var out, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("go test -bench %s: %w: %s", b.name, err, lastLine(append(out.Bytes(), stderr.Bytes()...)))
		}
		got := parseWake(out.Bytes())
		for _, last := range []string{"contact_last", "link_last"} {
			m, ok := got[last]
			if !ok {
				return fmt.Errorf("%s/%s: no p50_ms and p99_ms in its output", b.name, last)
			}
			key := "wake." + b.tag + "." + strings.TrimSuffix(last, "_last")
			h.figs.add(key+".p50", m["p50_ms"])
			h.figs.add(key+".p99", m["p99_ms"])
		}
	}
	return nil
}

// parseWake reads a benchmark's custom metrics by sub-benchmark name
// ("BenchmarkWakeLatency/contact_last-2 … 35.00 p50_ms 377.0 p99_ms").
func parseWake(out []byte) map[string]map[string]float64 {
	got := map[string]map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") {
			continue
		}
		_, sub, ok := strings.Cut(report.TrimProcs(f[0]), "/")
		if !ok {
			continue
		}
		m := map[string]float64{}
		for j := 2; j+1 < len(f); j += 2 {
			if v, err := strconv.ParseFloat(f[j], 64); err == nil {
				m[f[j+1]] = v
			}
		}
		if _, p50 := m["p50_ms"]; p50 {
			if _, p99 := m["p99_ms"]; p99 {
				got[sub] = m
			}
		}
	}
	return got
}
