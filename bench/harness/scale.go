package harness

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"time"

	"github.com/esimflow/esimflow/shared/stream"
	"github.com/prometheus/procfs"
)

// scaleInstances are the processor counts the scaling figures drain with.
var scaleInstances = []int{1, 2, 3}

// scaleRun drains one backlog per instance count with that many
// bin/processor processes on the one durable consumer (Redis store), and
// reads the CPU of the processors, nats-server and redis-server over each
// drain: on a machine of few cores the curve flattens where those processes
// together use every core, and the note of each run says where that was.
func (h *Harness) scaleRun(ctx context.Context) error {
	var steps []scaleStep
	for _, n := range scaleInstances {
		st, err := h.scaleDrain(ctx, n)
		if err != nil {
			return fmt.Errorf("%d processors: %w", n, err)
		}
		k := fmt.Sprintf("scale%d.", n)
		h.figs.add(k+"rate", st.rate)
		h.figs.add(k+"cpu", st.perEvent[0])
		h.figs.add(k+"nats", st.perEvent[1])
		h.figs.add(k+"redis", st.perEvent[2])
		h.figs.add(k+"cores", st.cores)
		h.figs.add(k+"machine", st.machine)
		h.progress("  %d processors: %.0f events/s, %.2f cores busy (machine %.2f)", n, st.rate, st.cores, st.machine)
		steps = append(steps, st)
	}
	h.note("%s", scaleNote(steps, runtime.NumCPU()))
	return nil
}

// scaleStep is one drain of the scaling figures.
type scaleStep struct {
	instances int
	rate      float64    // events/s
	perEvent  [3]float64 // CPU µs per event: the processors together, NATS, Redis
	cores     float64    // their CPU ÷ the drain's wall time
	machine   float64    // every process's CPU ÷ the drain's wall time
}

func (h *Harness) scaleDrain(ctx context.Context, n int) (scaleStep, error) {
	names, bodies := h.namespace(fmt.Sprintf("scale%d", n))
	defer h.dropNamespace(context.WithoutCancel(ctx), names)
	if _, _, err := stream.Ensure(ctx, h.js, names, limits); err != nil {
		return scaleStep{}, fmt.Errorf("streams: %w", err)
	}
	if err := h.publishBacklog(ctx, names, bodies, h.cfg.Backlog); err != nil {
		return scaleStep{}, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	// All instances are started before any is waited for, so they begin
	// within milliseconds of each other rather than one draining alone while
	// the next starts.
	var procs []service
	defer func() {
		for _, p := range procs {
			p.Stop()
		}
	}()
	for i := range n {
		s, err := h.launchService("processor", fmt.Sprintf("processor%d-%s", i+1, names.Namespace()), names, false)
		if err != nil {
			return scaleStep{}, err
		}
		procs = append(procs, s)
	}
	pids := []int{h.infra.nats.PID(), h.infra.redis.PID()}
	for _, p := range procs {
		pids = append(pids, p.PID())
	}
	var before []time.Duration
	var machineBefore time.Duration
	var beforeErr error
	watch := h.drainWatchFrom(ctx, names.Stream(stream.Events), names.Consumer(stream.ProcessorConsumer), uint64(h.cfg.Backlog),
		func() {
			if before, beforeErr = cpuTimes(pids); beforeErr == nil {
				machineBefore, beforeErr = machineBusy()
			}
		})
	for _, p := range procs {
		if err := p.ready(ctx); err != nil {
			return scaleStep{}, err
		}
	}
	res := <-watch
	if res.err != nil {
		return scaleStep{}, res.err
	}
	after, err := cpuTimes(pids)
	if err != nil {
		return scaleStep{}, err
	}
	machineAfter, err := machineBusy()
	if err != nil {
		return scaleStep{}, err
	}
	if beforeErr != nil {
		return scaleStep{}, beforeErr
	}
	if before == nil {
		return scaleStep{}, fmt.Errorf("the processors took events before the first poll of the backlog (%d events: too small to time)", h.cfg.Backlog)
	}
	var natsCPU, redisCPU, procCPU time.Duration
	natsCPU = after[0] - before[0]
	redisCPU = after[1] - before[1]
	for i := 2; i < len(pids); i++ {
		procCPU += after[i] - before[i]
	}
	events := float64(h.cfg.Backlog)
	return scaleStep{
		instances: n,
		rate:      events / res.elapsed.Seconds(),
		perEvent:  [3]float64{perOp(procCPU, events), perOp(natsCPU, events), perOp(redisCPU, events)},
		cores:     (procCPU + natsCPU + redisCPU).Seconds() / res.elapsed.Seconds(),
		machine:   (machineAfter - machineBefore).Seconds() / res.elapsed.Seconds(),
	}, nil
}

// scaleNote says, from one run's drains, how the rate grew with instances
// and what the processes used of the machine's cores. On a machine of few
// cores the curve flattens once processors, NATS and Redis (with whatever
// else runs there) keep every core busy: another instance then only divides
// the same CPU among more processes. When it flattens with cores to spare,
// the note says so rather than blame the CPU.
func scaleNote(steps []scaleStep, cores int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "processor scaling on %d cores:", cores)
	for i, st := range steps {
		sep := ";"
		if i == 0 {
			sep = ""
		}
		fmt.Fprintf(&b, "%s %d → %.0f events/s (%.2f × one instance), %.2f cores busy with processors, NATS and Redis (%.1f, %.1f, %.1f µs CPU per event), %.2f with every process",
			sep, st.instances, st.rate, st.rate/steps[0].rate, st.cores, st.perEvent[0], st.perEvent[1], st.perEvent[2], st.machine)
	}
	for i := 1; i < len(steps); i++ {
		// A step that adds under a quarter of one instance's rate is flat.
		if steps[i].rate-steps[i-1].rate >= 0.25*steps[0].rate {
			continue
		}
		prev := steps[i-1]
		perEvent := prev.perEvent[0] + prev.perEvent[1] + prev.perEvent[2]
		if prev.machine >= 0.9*float64(cores) {
			fmt.Fprintf(&b, ". It flattens at %d instances: with %d the machine's %d cores were already %.0f %% busy (%.2f cores of it processors, NATS and Redis, at %.0f µs CPU per event across the three; %.2f other processes), so another instance could only share that CPU, not add to it.",
				steps[i].instances, prev.instances, cores, 100*prev.machine/float64(cores), prev.cores, perEvent, prev.machine-prev.cores)
		} else {
			fmt.Fprintf(&b, ". It flattens at %d instances with cores to spare (%.2f of %d busy with %d): the limit there was not CPU, and these figures do not say what it was.",
				steps[i].instances, prev.machine, cores, prev.instances)
		}
		return b.String()
	}
	b.WriteString(". The curve did not flatten within these instance counts.")
	return b.String()
}

// machineBusy is the CPU time every process of the machine has used since
// boot: all of /proc/stat's time but idle and iowait.
func machineBusy() (time.Duration, error) {
	fs, err := procfs.NewDefaultFS()
	if err != nil {
		return 0, fmt.Errorf("/proc: %w", err)
	}
	st, err := fs.Stat()
	if err != nil {
		return 0, fmt.Errorf("/proc/stat: %w", err)
	}
	c := st.CPUTotal
	busy := c.User + c.Nice + c.System + c.IRQ + c.SoftIRQ + c.Steal
	return time.Duration(busy * float64(time.Second)), nil
}
