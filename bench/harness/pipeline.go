package harness

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/esimflow/esimflow/bench/report"
	"github.com/esimflow/esimflow/shared/stream"
	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// pipelineRun runs ingest, processor and notifier (console channel to the
// null device, Redis store) together and offers constant rates in steps,
// as fractions of this run's ingest-alone rate: up from half by tenths while
// each step holds, then halfway back into the first gap that did not (or down
// by tenths if half already fails). A step holds when every request succeeds
// at the offered rate and the consumers' lag, sampled each second, is not
// growing (report.Growing).
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

	step := func(frac float64) (bool, error) {
		rate := frac * ingestMax
		held, why, err := h.holdRate(ctx, names, tr, rate)
		if err != nil {
			return false, err
		}
		if held {
			h.progress("  %.0f req/s (%.2f × ingest alone): held", rate, frac)
		} else {
			h.progress("  %.0f req/s (%.2f × ingest alone): not held, %s", rate, frac, why)
		}
		return held, h.settle(ctx, names)
	}

	best := math.NaN()
	held, err := step(0.5)
	if err != nil {
		return err
	}
	switch {
	case held:
		best = 0.5
		for f := 0.6; f <= 1.05; f += 0.1 {
			ok, err := step(f)
			if err != nil {
				return err
			}
			if !ok {
				if ok, err := step(f - 0.05); err != nil {
					return err
				} else if ok {
					best = f - 0.05
				}
				break
			}
			best = f
		}
	default:
		for f := 0.4; f > 0.05; f -= 0.1 {
			ok, err := step(f)
			if err != nil {
				return err
			}
			if ok {
				best = f
				break
			}
		}
	}
	h.figs.add("pipeline.rate", best*ingestMax)
	h.figs.add("pipeline.ratio", best)
	return nil
}

// holdRate offers rate for the hold time and samples the lag each second.
func (h *Harness) holdRate(ctx context.Context, names stream.Names, tr vegeta.Targeter, rate float64) (held bool, why string, err error) {
	loadc := make(chan Load, 1)
	go func() { loadc <- RateLoad(ctx, tr, rate, h.cfg.Conns, h.cfg.Hold) }()
	var lag []float64
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		select {
		case l := <-loadc:
			switch {
			case l.Err() != nil:
				return false, l.Err().Error(), nil
			case l.Rate < 0.95*rate:
				return false, fmt.Sprintf("%.0f req/s sent, %.0f answered", l.Offered, l.Rate), nil
			case report.Growing(lag, rate):
				return false, fmt.Sprintf("lag growing to %.0f (%s)", lag[len(lag)-1], h.lagDetail(ctx, names)), nil
			}
			return true, "", nil
		case <-tick.C:
			n, err := h.pipelineLag(ctx, names)
			if err != nil {
				return false, "", err
			}
			lag = append(lag, float64(n))
		case <-ctx.Done():
			return false, "", ctx.Err()
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

// settle waits, up to two minutes, for the lag of a step to drain, so the
// next step starts from an empty backlog.
func (h *Harness) settle(ctx context.Context, names stream.Names) error {
	limit := time.Now().Add(2 * time.Minute)
	for {
		n, err := h.pipelineLag(ctx, names)
		if err != nil {
			return err
		}
		if n == 0 {
			return nil
		}
		if time.Now().After(limit) {
			return fmt.Errorf("pipeline: %d events still in flight two minutes after the step", n)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}
