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
	"github.com/esimflow/esimflow/shared/service"
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

func replay(ctx context.Context, cfg config.Config, opts processor.ReplayOptions, out, errOut io.Writer) error {
	if cfg.NATSURL == "" && answers(ctx, cfg.APIURL) {
		return fmt.Errorf("an esimflow answers at %s: stop it first, the embedded NATS data in %s takes one server at a time "+
			"(or point ESIMFLOW_API_URL elsewhere if that is another deployment)", cfg.APIURL, cfg.DataDir)
	}
	log := slog.New(slog.NewTextHandler(errOut, &slog.HandlerOptions{Level: slog.LevelWarn}))
	env, err := service.Open(ctx, cfg, log, service.Options{Name: "esimflow-replay", Store: true, Embedded: natsembed.Start, FailFast: true})
	if err != nil {
		return err
	}
	defer env.Close()

	var bar *progressbar.ProgressBar
	opts.SeenTTL = cfg.SeenTTL
	opts.Progress = func(total uint64) {
		bar = progressbar.NewOptions64(int64(total), progressbar.OptionSetWriter(errOut), progressbar.OptionSetDescription("replaying ESIM_EVENTS"),
			progressbar.OptionShowCount(), progressbar.OptionShowIts(), progressbar.OptionSetItsString("events"),
			progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionOnCompletion(func() { fmt.Fprintln(errOut) }))
	}
	opts.Step = func() { _ = bar.Add(1) }
	stats, err := processor.Replay(ctx, env.NATS.JS, env.Names, env.Store, opts)
	if bar != nil {
		_ = bar.Finish()
	}
	if err != nil {
		return fmt.Errorf("replay stopped after %d events: %w", stats.Events, err)
	}
	fmt.Fprintf(out, "replayed %d events: %d merged, %d parked (unknown type or health check), %d malformed (see esimflow dlq list)\n",
		stats.Events, stats.Applied, stats.Parked, stats.Malformed)
	return nil
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
