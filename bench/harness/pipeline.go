package harness

import (
	"context"
	"errors"
	"fmt"
	"math"
	"os"
	"strings"
	"time"

	"github.com/esimflow/esimflow/bench/report"
	"github.com/esimflow/esimflow/shared/stream"
	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// pipelineRun runs ingest, processor and notifier (console channel to the
// null device, Redis store) together and searches, with constant-rate steps,
// for the highest rate they hold. A step holds when every request succeeds at
// the offered rate and the consumers' lag, sampled each second, is not growing
// (report.Growing). The first step offers half this run's ingest-alone rate;
// after a held step the next offers a tenth of it more, after one that was not
// held the next aims just under what the pipeline completed during it (answered
// minus lag growth); once both bounds are known it bisects, until they are
// within 5% of the ingest-alone rate or the steps run out.
func (h *Harness) pipelineRun(ctx context.Context) error {
	ingestMax := h.last("ingest.rate")
	if math.IsNaN(ingestMax) {
		return errors.New("no ingest-alone rate in this run to step from")
	}
	names, bodies := h.namespace("pipe")
	defer h.dropNamespace(context.WithoutCancel(ctx), names)

	ing, url, err := h.startService(ctx, "ingest", names, false)
	if err != nil {
		return err
	}
	defer ing.Stop()
	proc, _, err := h.startService(ctx, "processor", names, false)
	if err != nil {
		return err
	}
	defer proc.Stop()
	notif, _, err := h.startService(ctx, "notifier", names, true)
	if err != nil {
		return err
	}
	defer notif.Stop()
	tr := h.signer.Targeter(url, bodies)
	pids := stagePIDs{ing.PID(), proc.PID(), notif.PID(), h.infra.nats.PID(), h.infra.redis.PID(), os.Getpid()}

	if err := h.idleCPU(ctx, names, pids); err != nil {
		return err
	}

	maxSteps := 7
	if h.cfg.Quick {
		maxSteps = 4
	}
	search := newRateSearch(ingestMax)
	var heldCPU []float64 // CPU µs per event of each stage at the highest rate held
	var heldCores, heldMachine float64
	for i := range maxSteps {
		rate, ok := search.next()
		if !ok {
			break
		}
		profiled := h.profileAsync(ctx, fmt.Sprintf("%s-step%d", names.Namespace(), i+1), h.cfg.Hold-2*time.Second, ing, proc, notif)
		st, err := h.holdRate(ctx, names, tr, rate, pids)
		<-profiled
		if err != nil {
			return err
		}
		if st.held && rate > search.lo {
			heldCPU, heldCores, heldMachine = st.cpu, st.cores, st.machine
		}
		search.record(rate, st.held, st.completed)
		line := fmt.Sprintf("%.0f req/s (%.2f × ingest alone): held", rate, rate/ingestMax)
		if !st.held {
			line = fmt.Sprintf("%.0f req/s (%.2f × ingest alone): not held, %s; %.0f events/s went through", rate, rate/ingestMax, st.why, st.completed)
		}
		h.note("pipeline %s, step %d: %s", names.Namespace(), i+1, line)
		h.progress("  %s", line)
		if err := h.settle(ctx, names); err != nil {
			return err
		}
	}
	h.figs.add("pipeline.rate", search.lo)
	h.figs.add("pipeline.ratio", search.lo/ingestMax)
	if heldCPU == nil {
		h.note("pipeline %s: no step held, so no CPU per event per stage", names.Namespace())
		return nil
	}
	var total float64
	for i, key := range stageKeys {
		h.figs.add(key, heldCPU[i])
		if key != "stage.loadgen" {
			total += heldCPU[i]
		}
	}
	h.figs.add("stage.total", total)
	h.figs.add("stage.all", total+heldCPU[len(heldCPU)-1])
	h.figs.add("stage.percore", 1e6/total)
	h.figs.add("stage.cores", heldCores)
	h.figs.add("stage.machine", heldMachine)
	return nil
}

// idleCPU reads what the pipeline's processes use with no load for a few
// seconds (timers, heartbeats, polls, GC): each held step's CPU per event
// includes it, and at a low held rate it weighs on every event, so the rows
// are read with it.
func (h *Harness) idleCPU(ctx context.Context, names stream.Names, pids stagePIDs) error {
	d := 5 * time.Second
	if h.cfg.Quick {
		d = 2 * time.Second
	}
	before, err := cpuTimes(pids)
	if err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
	}
	after, err := cpuTimes(pids)
	if err != nil {
		return err
	}
	var total float64
	parts := make([]string, 0, len(pids))
	for i, key := range stageKeys {
		msPerS := float64(after[i]-before[i]) / float64(time.Millisecond) / d.Seconds()
		parts = append(parts, fmt.Sprintf("%s %.1f", strings.TrimPrefix(key, "stage."), msPerS))
		if key != "stage.loadgen" {
			total += msPerS
		}
	}
	h.figs.add("stage.idle", total)
	h.note("pipeline %s, idle before the steps, CPU ms per second: %s", names.Namespace(), strings.Join(parts, ", "))
	return nil
}

// stagePIDs are the processes of a pipeline run, in stageKeys' order.
type stagePIDs []int

// stageKeys name the figures of each process's CPU per event: ingest,
// processor, notifier, nats-server, redis-server, and this process (the load
// generator, which shares the cores).
var stageKeys = []string{"stage.ingest", "stage.processor", "stage.notifier", "stage.nats", "stage.redis", "stage.loadgen"}

// rateSearch picks the sustained pipeline's next step (see pipelineRun).
type rateSearch struct {
	ref    float64 // ingest alone
	lo, hi float64 // highest rate held; lowest not held (+Inf until one is)
	hint   float64 // what went through the last step not held
	steps  int
}

func newRateSearch(ref float64) *rateSearch { return &rateSearch{ref: ref, hi: math.Inf(1)} }

func (s *rateSearch) next() (float64, bool) {
	switch {
	case s.steps == 0:
		return 0.5 * s.ref, true
	case s.hi-s.lo <= 0.05*s.ref:
		return 0, false
	case math.IsInf(s.hi, 1):
		if s.lo >= s.ref {
			return 0, false
		}
		return min(s.lo+0.1*s.ref, s.ref), true
	}
	// Both bounds known, or only the upper: aim just under what went through,
	// kept inside the middle half of the interval so each step narrows it.
	lo, hi := s.lo, s.hi
	r := 0.95 * s.hint
	if math.IsInf(s.hint, 1) {
		r = (lo + hi) / 2
	}
	return min(max(r, lo+0.25*(hi-lo)), hi-0.25*(hi-lo)), true
}

func (s *rateSearch) record(rate float64, held bool, completed float64) {
	s.steps++
	if held {
		s.lo = max(s.lo, rate)
		s.hint = math.Inf(1) // no better guess than the middle of the interval
		return
	}
	s.hi = min(s.hi, rate)
	s.hint = completed
}

type stepResult struct {
	held      bool
	why       string    // when not held
	completed float64   // events/s through the whole pipeline: answered minus lag growth
	cpu       []float64 // CPU µs per answered event of each process, in stageKeys' order
	cores     float64   // the pipeline's processes and the generator: their CPU ÷ the step's time
	machine   float64   // every process of the machine, likewise
}

// holdRate offers rate for the hold time and samples the lag each second; it
// reads the CPU the processes used over the step, per answered event.
func (h *Harness) holdRate(ctx context.Context, names stream.Names, tr vegeta.Targeter, rate float64, pids stagePIDs) (stepResult, error) {
	before, err := cpuTimes(pids)
	if err != nil {
		return stepResult{}, err
	}
	machineBefore, err := machineBusy()
	if err != nil {
		return stepResult{}, err
	}
	start := time.Now()
	loadc := make(chan Load, 1)
	go func() { loadc <- RateLoad(ctx, tr, rate, h.cfg.Conns, h.cfg.Hold) }()
	var lag []float64
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case l := <-loadc:
			after, err := cpuTimes(pids)
			if err != nil {
				return stepResult{}, err
			}
			machineAfter, err := machineBusy()
			if err != nil {
				return stepResult{}, err
			}
			elapsed := time.Since(start).Seconds()
			st := stepResult{completed: l.Rate, machine: (machineAfter - machineBefore).Seconds() / elapsed}
			for i := range pids {
				st.cpu = append(st.cpu, perOp(after[i]-before[i], float64(l.Requests)*l.Success))
				st.cores += (after[i] - before[i]).Seconds() / elapsed
			}
			if len(lag) > 1 {
				st.completed -= (lag[len(lag)-1] - lag[0]) / float64(len(lag)-1)
			}
			switch {
			case l.Err() != nil:
				st.why = l.Err().Error()
			case l.Rate < 0.95*rate:
				st.why = fmt.Sprintf("%.0f req/s sent, %.0f answered", l.Offered, l.Rate)
			case report.Growing(lag, rate):
				st.why = fmt.Sprintf("lag growing to %.0f (%s)", lag[len(lag)-1], h.lagDetail(ctx, names))
			default:
				st.held = true
			}
			return st, nil
		case <-tick.C:
			n, err := h.pipelineLag(ctx, names)
			if err != nil {
				return stepResult{}, err
			}
			lag = append(lag, float64(n))
		case <-ctx.Done():
			return stepResult{}, ctx.Err()
		}
	}
}

// pipelineLag is the events not yet through: the processor's backlog plus the
// notifier's.
func (h *Harness) pipelineLag(ctx context.Context, names stream.Names) (uint64, error) {
	p, err := h.lag(ctx, names.Stream(stream.Events), names.Consumer(stream.ProcessorConsumer))
	if err != nil {
		return 0, err
	}
	n, err := h.lag(ctx, names.Stream(stream.Notify), names.Consumer(stream.NotifierConsumer))
	if err != nil {
		return 0, err
	}
	return p + n, nil
}

// lagDetail says which consumer lags, for the progress line.
func (h *Harness) lagDetail(ctx context.Context, names stream.Names) string {
	p, perr := h.lag(ctx, names.Stream(stream.Events), names.Consumer(stream.ProcessorConsumer))
	n, nerr := h.lag(ctx, names.Stream(stream.Notify), names.Consumer(stream.NotifierConsumer))
	if perr != nil || nerr != nil {
		return fmt.Sprint(perr, nerr)
	}
	return fmt.Sprintf("processor %d, notifier %d", p, n)
}

// settle waits, up to three minutes, for the lag of a step to drain, so the
// next step starts from an empty backlog.
func (h *Harness) settle(ctx context.Context, names stream.Names) error {
	limit := time.Now().Add(3 * time.Minute)
	for {
		n, err := h.pipelineLag(ctx, names)
		if err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		if time.Now().After(limit) {
			return fmt.Errorf("pipeline: %d events still in flight three minutes after the step", n)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}
