package harness

import (
	"context"
	"fmt"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/esimflow/esimflow/shared/event"
	"github.com/esimflow/esimflow/shared/stream"
)

// httpRun measures, against one stream, the baseline handler at full load,
// ingest at full load and at half the baseline's rate, and the Express handler
// at full load.
func (h *Harness) httpRun(ctx context.Context) error {
	names, bodies := h.namespace("http")
	defer h.dropNamespace(context.WithoutCancel(ctx), names)
	if _, _, err := stream.Ensure(ctx, h.js, names, limits); err != nil {
		return fmt.Errorf("streams: %w", err)
	}

	base, err := h.baselineLoad(ctx, names, bodies)
	if err != nil {
		return err
	}
	h.figs.add("baseline.rate", base.Rate)
	h.figs.add("baseline.p99", ms(base.P99))
	h.progress("  baseline: %.0f req/s, p99 %v", base.Rate, base.P99)

	ing, err := h.ingestLoad(ctx, names, bodies, base.Rate/2)
	if err != nil {
		return err
	}
	h.figs.add("ingest.ratio", ratio(h.last("ingest.rate"), base.Rate))
	_ = ing

	if h.express == "" {
		return nil
	}
	ex, err := h.expressLoad(ctx, bodies)
	if err != nil {
		return err
	}
	h.figs.add("express.rate", ex.Rate)
	h.figs.add("express.p99", ms(ex.P99))
	h.figs.add("express.ratio", ratio(h.last("ingest.rate"), ex.Rate))
	h.progress("  express: %.0f req/s, p99 %v", ex.Rate, ex.P99)
	return nil
}

// last is the value a figure got in this run, NaN when it got none.
func (h *Harness) last(key string) float64 {
	v := h.figs[key]
	if len(v) == 0 {
		return math.NaN()
	}
	return v[len(v)-1]
}

func (h *Harness) baselineLoad(ctx context.Context, names stream.Names, bodies *Bodies) (Load, error) {
	addr, err := freeAddr()
	if err != nil {
		return Load{}, err
	}
	subject := names.EventSubject(event.Type("BASELINE"))
	p, err := Start(h.cfg.WorkDir, "baseline", h.cfg.Self,
		[]string{"baseline-handler", "-addr", addr, "-nats", h.infra.NATSURL, "-subject", subject}, nil)
	if err != nil {
		return Load{}, err
	}
	defer p.Stop()
	if err := waitTCP(ctx, p, addr); err != nil {
		return Load{}, err
	}
	tr := h.signer.Targeter("http://"+addr, bodies)
	l := MaxLoad(ctx, tr, h.cfg.Conns, h.cfg.Duration)
	if err := l.Err(); err != nil {
		return l, fmt.Errorf("baseline handler: %w", err)
	}
	// The baseline's own latency at half its rate: what the load generator
	// and the shared cores allow at that rate, next to ingest's.
	half := RateLoad(ctx, tr, l.Rate/2, h.cfg.Conns, h.cfg.Duration)
	if err := half.Err(); err != nil {
		return l, fmt.Errorf("baseline handler at half its rate: %w", err)
	}
	h.figs.add("baseline.half.p99", ms(half.P99))
	return l, nil
}

// ingestLoad runs bin/ingest, loads it fully, then at halfRate for its latency.
func (h *Harness) ingestLoad(ctx context.Context, names stream.Names, bodies *Bodies, halfRate float64) (Load, error) {
	p, url, err := h.startService(ctx, "ingest", names, false)
	if err != nil {
		return Load{}, err
	}
	defer p.Stop()
	before, err := p.Usage()
	if err != nil {
		return Load{}, err
	}
	// Every process the request touches, and the generator, as the
	// pipeline's CPU per event is read: the two compare (pipeline.go).
	pids := []int{p.PID(), h.infra.nats.PID(), os.Getpid()}
	allBefore, err := cpuTimes(pids)
	if err != nil {
		return Load{}, err
	}
	tr := h.signer.Targeter(url, bodies)
	profiled := h.profileAsync(ctx, names.Namespace()+"-full", h.cfg.Duration-time.Second, p)
	l := MaxLoad(ctx, tr, h.cfg.Conns, h.cfg.Duration)
	<-profiled
	after, err := p.Usage()
	if err != nil {
		return l, err
	}
	allAfter, err := cpuTimes(pids)
	if err != nil {
		return l, err
	}
	if err := l.Err(); err != nil {
		return l, fmt.Errorf("ingest: %w", err)
	}
	h.figs.add("ingest.rate", l.Rate)
	h.figs.add("ingest.p50", ms(l.P50))
	h.figs.add("ingest.p99", ms(l.P99))
	h.figs.add("ingest.p999", ms(l.P999))
	h.figs.add("ingest.cpu", perOp(after.CPU-before.CPU, float64(l.Requests)*l.Success))
	var all time.Duration
	for i := range pids {
		all += allAfter[i] - allBefore[i]
	}
	h.figs.add("ingest.allcpu", perOp(all, float64(l.Requests)*l.Success))
	h.figs.add("ingest.rss", mib(after.HWM))
	h.progress("  ingest: %.0f req/s, p99 %v, RSS %.1f MiB", l.Rate, l.P99, mib(after.HWM))

	halfBefore, err := p.Usage()
	if err != nil {
		return l, err
	}
	half := RateLoad(ctx, tr, halfRate, h.cfg.Conns, h.cfg.Duration)
	if err := half.Err(); err != nil {
		return l, fmt.Errorf("ingest at half the baseline rate: %w", err)
	}
	halfAfter, err := p.Usage()
	if err != nil {
		return l, err
	}
	h.figs.add("ingest.half.cpu", perOp(halfAfter.CPU-halfBefore.CPU, float64(half.Requests)*half.Success))
	h.figs.add("ingest.half.rate", halfRate)
	h.figs.add("ingest.half.p50", ms(half.P50))
	h.figs.add("ingest.half.p99", ms(half.P99))
	h.figs.add("ingest.half.p999", ms(half.P999))
	h.progress("  ingest at %.0f req/s: p99 %v", halfRate, half.P99)
	return l, nil
}

// expressApp is the handler of the provider's documentation in Express: parse
// the JSON, answer 200, store nothing.
const expressApp = `const express = require('express');
const app = express();
app.post('/webhooks/esim/:token', express.json(), (req, res) => {
  res.status(200).json({ received: true });
});
app.listen(Number(process.argv[2]), '127.0.0.1');
`

// installExpress writes the app and runs npm install express in a temporary
// folder; it returns the folder, or "" and why not.
func (h *Harness) installExpress(ctx context.Context) (dir, why string) {
	if h.cfg.NodeBin == "" || h.cfg.NPMBin == "" {
		return "", "Node.js or npm not installed"
	}
	dir, err := h.mkdir("express")
	if err != nil {
		return "", err.Error()
	}
	if err := os.WriteFile(filepath.Join(dir, "app.js"), []byte(expressApp), 0o644); err != nil {
		return "", err.Error()
	}
	if err := os.WriteFile(filepath.Join(dir, "package.json"), []byte(`{"name":"esimbench-express","private":true}`), 0o644); err != nil {
		return "", err.Error()
	}
	h.progress("npm install express (for the Express baseline)")
	cmd := exec.CommandContext(ctx, h.cfg.NPMBin, "install", "--no-audit", "--no-fund", "--loglevel=error", "express")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Sprintf("npm install express failed: %v: %s", err, lastLine(out))
	}
	return dir, ""
}

func (h *Harness) expressLoad(ctx context.Context, bodies *Bodies) (Load, error) {
	port, err := freePort()
	if err != nil {
		return Load{}, err
	}
	p, err := Start(h.cfg.WorkDir, "express", h.cfg.NodeBin, []string{filepath.Join(h.express, "app.js"), strconv.Itoa(port)}, nil)
	if err != nil {
		return Load{}, err
	}
	defer p.Stop()
	addr := "127.0.0.1:" + strconv.Itoa(port)
	if err := waitTCP(ctx, p, addr); err != nil {
		return Load{}, err
	}
	l := MaxLoad(ctx, h.signer.Targeter("http://"+addr, bodies), h.cfg.Conns, h.cfg.Duration)
	if err := l.Err(); err != nil {
		return l, fmt.Errorf("express: %w", err)
	}
	return l, nil
}

// lastLine is the last non-empty line of a command's output.
func lastLine(b []byte) string {
	s := strings.TrimRight(string(b), "\r\n")
	return s[strings.LastIndexByte(s, '\n')+1:]
}
