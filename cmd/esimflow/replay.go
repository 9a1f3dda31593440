package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/esimflow/esimflow/processor"
	"github.com/esimflow/esimflow/shared/config"
	"github.com/esimflow/esimflow/shared/natsembed"
	"github.com/esimflow/esimflow/shared/provider"
	"github.com/esimflow/esimflow/shared/service"
	"github.com/esimflow/esimflow/shared/storeopen"
	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
)

// newReplayCmd is `esimflow replay`: rebuild order and profile state from
// ESIM_EVENTS into the store.
func newReplayCmd(getenv func(string) string) *cobra.Command {
	var (
		since   string
		fromSeq uint64
	)
	cmd := &cobra.Command{
		Use:   "replay [--since TIME|--from-seq N]",
		Short: "Rebuild order and profile state from ESIM_EVENTS into the store (after losing Redis, say)",
		Long: "Replay reads ESIM_EVENTS (all of it, or from --from-seq, or since --since) and merges every\n" +
			"event into the store as the processor does: merges are idempotent and order-independent, so\n" +
			"the state comes out as if the events had been processed again. It publishes no intents, so no\n" +
			"customer message goes out twice; the seen marks of events within ESIMFLOW_SEEN_TTL come back.\n\n" +
			"It connects like the services: ESIMFLOW_NATS_URL and ESIMFLOW_REDIS_URL (else the NATS KV\n" +
			"store). With no ESIMFLOW_NATS_URL it opens the embedded server's data in ESIMFLOW_DATA_DIR, so\n" +
			"the all-in-one must be stopped first; against an external NATS the processors may keep running.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if since != "" && fromSeq > 0 {
				return fmt.Errorf("--since and --from-seq: give one")
			}
			opts := processor.ReplayOptions{FromSeq: fromSeq}
			if since != "" {
				t, err := parseSince(since, time.Now())
				if err != nil {
					return err
				}
				opts.Since = t
			}
			cfg, err := config.Load(getenv)
			if err != nil {
				return fmt.Errorf("configuration: %w", err)
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			return replay(ctx, cfg, opts, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	cmd.Flags().StringVar(&since, "since", "", "replay events stored since TIME (RFC 3339, e.g. 2026-11-01T00:00:00Z, or a duration back from now, e.g. 24h)")
	cmd.Flags().Uint64Var(&fromSeq, "from-seq", 0, "replay from this ESIM_EVENTS sequence")
	return cmd
}

// replay runs `esimflow replay` once its flags are read: it refuses beside a
// running all-in-one, opens NATS and the store as the services do, replays
// with a progress bar and prints what it did.
func replay(ctx context.Context, cfg config.Config, opts processor.ReplayOptions, out, errOut io.Writer) error {
	if err := refuseBesideRunning(ctx, cfg); err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(errOut, &slog.HandlerOptions{Level: slog.LevelWarn}))
	env, err := service.Open(ctx, cfg, log, service.Options{Name: "esimflow-replay", Embedded: natsembed.Start, FailFast: true})
	if err != nil {
		return err
	}
	defer env.Close()
	st, closeStore, err := storeopen.Open(ctx, cfg.Store, env.NATS.JS)
	if err != nil {
		return err
	}
	env.OnClose(closeStore)

	// The stored events are read by the adapters the processor reads them by.
	if opts.Providers, err = provider.Load(cfg.ProvidersDir, provider.Options{}); err != nil {
		return err
	}
	bar := &progress{w: errOut}
	opts.SeenTTL, opts.Progress, opts.Step = cfg.Store.SeenTTL, bar.start, bar.step
	stats, err := processor.Replay(ctx, env.NATS.JS, env.Names, st, opts)
	bar.finish()
	if err != nil {
		return fmt.Errorf("replay stopped after %d events: %w", stats.Events, err)
	}
	fmt.Fprintf(out, "replayed %d events: %d merged, %d parked (unknown type or health check), %d malformed (see esimflow dlq list)\n",
		stats.Events, stats.Applied, stats.Parked, stats.Malformed)
	return nil
}

// refuseBesideRunning stops a replay of the embedded server's data while an
// esimflow answers: the data takes one server at a time.
func refuseBesideRunning(ctx context.Context, cfg config.Config) error {
	if cfg.NATS.URL != "" {
		return nil // an external NATS: the processors may keep running
	}
	for _, api := range cfg.CLI.APIURLs {
		if answers(ctx, api) {
			return fmt.Errorf("an esimflow answers at %s: stop it first, the embedded NATS data in %s takes one server at a time "+
				"(or point ESIMFLOW_API_URL elsewhere if that is another deployment)", api, cfg.NATS.DataDir)
		}
	}
	return nil
}

// progress draws a replay's progress bar once the total is known.
type progress struct {
	w   io.Writer
	bar *progressbar.ProgressBar
}

func (p *progress) start(total uint64) {
	p.bar = progressbar.NewOptions64(int64(total), progressbar.OptionSetWriter(p.w), progressbar.OptionSetDescription("replaying ESIM_EVENTS"),
		progressbar.OptionShowCount(), progressbar.OptionShowIts(), progressbar.OptionSetItsString("events"),
		progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionOnCompletion(func() { fmt.Fprintln(p.w) }))
}

func (p *progress) step() {
	if p.bar != nil {
		_ = p.bar.Add(1)
	}
}

func (p *progress) finish() {
	if p.bar != nil {
		_ = p.bar.Finish()
	}
}

// parseSince reads an RFC 3339 time, or a duration back from now.
func parseSince(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d > 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("--since %q: want an RFC 3339 time (2026-11-01T00:00:00Z) or a duration such as 24h", s)
}

// answers reports whether something serves /healthz at api.
func answers(ctx context.Context, api string) bool {
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimRight(api, "/")+"/healthz", nil)
	if err != nil {
		return false
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}
