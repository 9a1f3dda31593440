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

	"github.com/esimflow/esimflow/bench/report"
	"github.com/esimflow/esimflow/shared/event"
	"github.com/esimflow/esimflow/shared/stream"
	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// httpRun measures, against one stream, the baseline handler and ingest at
// full load, the two at half the baseline's rate in alternating slices, and
// the Express handler at full load.
func (h *Harness) httpRun(ctx context.Context) error {
	names, bodies := h.namespace("http")
	defer h.dropNamespace(context.WithoutCancel(ctx), names)
	if _, _, err := stream.Ensure(ctx, h.js, names, limits); err != nil {
		return fmt.Errorf("streams: %w", err)
	}
	if err := h.baselineAndIngest(ctx, names, bodies); err != nil {
		return err
	}
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

// baselineAndIngest runs the baseline handler and bin/ingest side by side:
// each at full load in turn, then both at half the baseline's rate.
func (h *Harness) baselineAndIngest(ctx context.Context, names stream.Names, bodies *Bodies) error {
	addr, err := freeAddr()
	if err != nil {
		return err
	}
	subject := names.EventSubject(event.Type("BASELINE"))
	bp, err := Start(h.cfg.WorkDir, "baseline", h.cfg.Self,
		[]string{"baseline-handler", "-addr", addr, "-nats", h.infra.NATSURL, "-subject", subject}, nil)
	if err != nil {
		return err
	}
	defer bp.Stop()
	if err := waitTCP(ctx, bp, addr); err != nil {
		return err
	}
	baseTr := h.signer.Targeter("http://"+addr, bodies)
	base := MaxLoad(ctx, baseTr, h.cfg.Conns, h.cfg.Duration)
	if err := base.Err(); err != nil {
		return fmt.Errorf("baseline handler: %w", err)
	}
	h.figs.add("baseline.rate", base.Rate)
	h.figs.add("baseline.p99", ms(base.P99))
	h.progress("  baseline: %.0f req/s, p99 %v", base.Rate, base.P99)

	ip, url, err := h.startService(ctx, "ingest", names, false)
	if err != nil {
		return err
	}
	defer ip.Stop()
	ingTr := h.signer.Targeter(url, bodies)
	if err := h.ingestFull(ctx, names.Namespace()+"-full", ip, ingTr); err != nil {
		return err
	}
	h.figs.add("ingest.ratio", ratio(h.last("ingest.rate"), base.Rate))
	return h.halfRate(ctx, baseTr, ingTr, ip, base.Rate/2)
}

// ingestFull loads ingest (process p, requests from tr) fully; its CPU
// profile, when asked for, is saved as profile.
func (h *Harness) ingestFull(ctx context.Context, profile string, p *Process, tr vegeta.Targeter) error {
	before, err := p.Usage()
	if err != nil {
		return err
	}
	// Every process the request touches, and the generator, as the
	// pipeline's CPU per event is read: the two compare (pipeline.go).
	pids := []int{p.PID(), h.infra.nats.PID(), os.Getpid()}
	allBefore, err := cpuTimes(pids)
	if err != nil {
		return err
	}
	profiled := h.profileAsync(ctx, profile, h.cfg.Duration-time.Second, p)
	l := MaxLoad(ctx, tr, h.cfg.Conns, h.cfg.Duration)
	<-profiled
	after, err := p.Usage()
	if err != nil {
		return err
	}
	allAfter, err := cpuTimes(pids)
	if err != nil {
		return err
	}
	if err := l.Err(); err != nil {
		return fmt.Errorf("ingest: %w", err)
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
	return nil
}

// halfSlice is about how long each server is loaded at a time at half rate.
const halfSlice = time.Second

// halfRate loads the baseline handler and ingest at the same rate, half the
// baseline's full one, for the attack's duration each, in alternating
// slices of about a second, the first server of each pair taking turns: a
// burst of the shared machine then falls on both alike, where two attacks
// one after the other let it decide which p99 is the higher (ADR 14,
// addendum 2). The ratio of the two p99s is read per pair of slices and its
// median taken: a stall of tens of milliseconds sets a whole attack's p99
// at this rate, and so would decide a pooled ratio by where it fell; it
// moves one pair's. ingest's CPU is read over its own slices.
func (h *Harness) halfRate(ctx context.Context, baseTr, ingTr vegeta.Targeter, ing *Process, rate float64) error {
	n := max(4, int(h.cfg.Duration/halfSlice))
	slice := h.cfg.Duration / time.Duration(n)
	base, in := NewPaced(rate, h.cfg.Conns), NewPaced(rate, h.cfg.Conns)
	var cpu time.Duration
	runIngest := func() (Load, error) {
		before, err := ing.Usage()
		if err != nil {
			return Load{}, err
		}
		l := in.Run(ctx, ingTr, slice)
		after, err := ing.Usage()
		if err != nil {
			return l, err
		}
		cpu += after.CPU - before.CPU
		return l, nil
	}
	pairs := make([]float64, 0, n)
	for i := range n {
		var b Load
		if i%2 == 0 {
			b = base.Run(ctx, baseTr, slice)
		}
		l, err := runIngest()
		if err != nil {
			return err
		}
		if i%2 == 1 {
			b = base.Run(ctx, baseTr, slice)
		}
		pairs = append(pairs, ratio(ms(l.P99), ms(b.P99)))
	}
	bl, il := base.Load(), in.Load()
	if err := bl.Err(); err != nil {
		return fmt.Errorf("baseline handler at half its rate: %w", err)
	}
	if err := il.Err(); err != nil {
		return fmt.Errorf("ingest at half the baseline rate: %w", err)
	}
	h.figs.add("baseline.half.p99", ms(bl.P99))
	h.figs.add("ingest.half.cpu", perOp(cpu, float64(il.Requests)*il.Success))
	h.figs.add("ingest.half.rate", rate)
	h.figs.add("ingest.half.p50", ms(il.P50))
	h.figs.add("ingest.half.p99", ms(il.P99))
	h.figs.add("ingest.half.p999", ms(il.P999))
	pairRatio := report.Summarize(pairs).Median
	h.figs.add("ingest.half.p99ratio", pairRatio)
	h.progress("  at %.0f req/s, in %d slices of %v each: p99 baseline %v, ingest %v; ingest's ÷ the baseline's per pair, median %.2f",
		rate, n, slice, bl.P99, il.P99, pairRatio)
	return nil
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
