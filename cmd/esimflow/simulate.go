package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os/signal"
	"syscall"
	"time"

	"github.com/esimflow/esimflow/cmd/esimflow/simulate"
	"github.com/esimflow/esimflow/shared/config"
	"github.com/esimflow/esimflow/shared/intent"
	"github.com/spf13/cobra"
)

// simulateFlags are simulate's knobs beyond simulate.Config.
type simulateFlags struct {
	cfg                 simulate.Config
	expect, check       bool
	contacts            bool
	serve, airaloSecret string
	provider            simulate.ProviderOptions
	webhookPatience     time.Duration
}

func newSimulateCmd(getenv func(string) string) *cobra.Command {
	f := &simulateFlags{}
	var api *apiFlags
	cmd := &cobra.Command{
		Use:   "simulate [--check] [--seed N --esims N --rate R --duplicates P --reorder D --drop P]",
		Short: "Play a provider: seeded eSIM lifecycles sent as webhooks, its query API, and the truth to check esimflow against",
		Long: "Simulate plays eSIM lifecycles — orders, activations, usage, top-ups, suspensions, renewals,\n" +
			"cancellations — as the provider's webhooks to --url, from a pool of workers that retry on 5xx\n" +
			"and timeouts, with some webhooks sent twice, reordered or never sent. The same --seed sends the\n" +
			"same bodies. It signs them as ingest is configured (ESIMFLOW_INGEST_HMAC_SECRETS,\n" +
			"ESIMFLOW_INGEST_SIGNATURE_*) and registers each order's contact through the internal API\n" +
			"(--api, --token), so that the messages go out.\n\n" +
			"It knows the truth: --expect prints the final state and the customer messages esimflow must end\n" +
			"with (JSON) and sends nothing; --check sends, then polls the internal API until esimflow matches\n" +
			"or --check-timeout passes, and exits non-zero listing the differences. --serve also serves the\n" +
			"provider's query API (eSIM Access: esim/query, esim/usage/query, webhook/save) until Ctrl-C, or\n" +
			"with --check until the check ends: point esimflow's reconciler at it (ESIMFLOW_RECONCILE_URL) and\n" +
			"dropped webhooks are learnt by polling.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			return runSimulate(ctx, cmd, f, api, getenv)
		},
	}
	fs := cmd.Flags()
	fs.Uint64Var(&f.cfg.Seed, "seed", 1, "seed of the lifecycles, drops and duplicates; names the orders and ICCIDs (SIM<seed>-…), so runs with other seeds share none")
	fs.IntVar(&f.cfg.ESIMs, "esims", 20, "how many eSIMs (one order each)")
	fs.Float64Var(&f.cfg.Rate, "rate", 20, "webhooks per second, on average")
	fs.Float64Var(&f.cfg.Duplicates, "duplicates", 0.05, "share of webhooks sent again after their 200")
	fs.DurationVar(&f.cfg.Reorder, "reorder", 1500*time.Millisecond, "up to how far each webhook's send time moves from its step's (steps are 0.3–1.5 s apart before pacing; 0 sends each eSIM's webhooks in order)")
	fs.Float64Var(&f.cfg.Drop, "drop", 0, "share of webhooks never sent (only a reconciler polling the query API can learn of them)")
	fs.IntVar(&f.cfg.Workers, "workers", 8, "webhooks in flight at once")
	fs.IntVar(&f.cfg.Attempts, "attempts", 10, "attempts per webhook before it is given up")
	fs.DurationVar(&f.cfg.Backoff, "backoff", 200*time.Millisecond, "first wait before a retry; doubles up to 8×, Retry-After honoured up to 5s")
	fs.StringVar(&f.cfg.Provider, "provider", simulate.ESIMAccess, "webhook format and signature: esimaccess (signed as ingest is configured), or airalo (its low-data webhooks, airalo-signature with --airalo-secret; no --expect or --check)")
	fs.StringVar(&f.airaloSecret, "airalo-secret", "", "with --provider airalo: the client secret its webhooks are signed with (hex HMAC-SHA512 in airalo-signature)")
	fs.StringVar(&f.cfg.Webhook, "url", "http://127.0.0.1:8080/webhooks/esim", "the webhook endpoint (put a path token in it if ingest wants one)")
	fs.DurationVar(&f.webhookPatience, "webhook-timeout", 5*time.Second, "how long the provider waits for an answer before it retries")
	fs.BoolVar(&f.expect, "expect", false, "print the expected final state and messages as JSON, send nothing")
	fs.BoolVar(&f.check, "check", false, "after sending, poll the internal API until esimflow holds the expected state and messages; exit non-zero on a difference")
	fs.DurationVar(&f.cfg.CheckTimeout, "check-timeout", time.Minute, "how long --check waits for esimflow to converge after the last webhook (raise it for large runs on a busy machine)")
	fs.BoolVar(&f.contacts, "contacts", true, "register each order's contact through the internal API before sending")
	fs.StringVar(&f.serve, "serve", "", "also serve the provider's query API at this address (e.g. 127.0.0.1:8090) until Ctrl-C (with --check, until the check ends)")
	fs.StringVar(&f.provider.AccessCode, "access-code", "simulator", "the query API's RT-AccessCode")
	fs.StringVar(&f.provider.SecretKey, "secret-key", "simulator-secret", "the query API's RT-SecretKey (webhook/save)")
	fs.Float64Var(&f.provider.RateLimit, "rate-limit", 8, "query API calls per second per account; beyond, 429 with Retry-After")
	fs.Float64Var(&f.provider.SlowRate, "slow", 0, "share of query API calls answered late (--slow-by)")
	fs.DurationVar(&f.provider.SlowBy, "slow-by", 3*time.Second, "how late a slow query API call is answered")
	fs.Float64Var(&f.provider.ErrorRate, "errors", 0, "share of query API calls answered 503")
	api = newAPIFlags(cmd, getenv)
	return cmd
}

func runSimulate(ctx context.Context, cmd *cobra.Command, f *simulateFlags, api *apiFlags, getenv func(string) string) error {
	out := cmd.OutOrStdout()
	cfg, err := config.Load(getenv)
	if err != nil {
		return fmt.Errorf("configuration: %w", err)
	}
	// The truth follows the target's message rules: the same settings.
	f.cfg.Rules = intent.Rules{LowDataThresholds: cfg.Processor.LowDataThresholds, ValidityLowDays: intent.DefaultValidityLowDays,
		TopUps: cfg.Processor.TopUps, Renewals: cfg.Processor.Renewals}
	sim, err := simulate.New(f.cfg)
	if err != nil {
		return err
	}
	if f.check {
		if _, err := sim.Expect(ctx); err != nil {
			return fmt.Errorf("--check: %w", err)
		}
	}
	if f.expect {
		want, err := sim.Expect(ctx)
		if err != nil {
			return err
		}
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(want)
	}
	sign, err := signer(cfg.Ingest)
	if err != nil {
		return err
	}
	if f.cfg.Provider == simulate.Airalo {
		sign = nil
		if f.airaloSecret != "" {
			sign = simulate.AiraloSign(f.airaloSecret)
		}
	}
	var state *stateAPI
	if f.contacts || f.check {
		c, err := api.client()
		if err != nil {
			return err
		}
		state = &stateAPI{c}
	}

	// The provider's query API, over the same lifecycles.
	var prov *simulate.Provider
	if f.serve != "" {
		f.provider.Seed, f.provider.Sign = f.cfg.Seed, sign
		if prov, err = simulate.NewProvider(sim.Plan, f.provider); err != nil {
			return err
		}
		ln, err := net.Listen("tcp", f.serve)
		if err != nil {
			return fmt.Errorf("--serve: %w", err)
		}
		srv := &http.Server{Handler: prov.Handler(), ReadHeaderTimeout: 5 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		defer func() {
			sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
			defer cancel()
			_ = srv.Shutdown(sctx)
		}()
		fmt.Fprintf(out, "provider query API at http://%s (RT-AccessCode %s): %s, %s, %s\n", ln.Addr(), f.provider.AccessCode,
			simulate.PathQuery, simulate.PathUsageQuery, simulate.PathWebhookSave)
	}

	fmt.Fprintf(out, "simulate: seed %d, %d eSIMs, %d webhooks at %g/s to %s (duplicates %g, reorder %v, drop %g)\n",
		f.cfg.Seed, f.cfg.ESIMs, sim.Webhooks(), f.cfg.Rate, maskPathToken(f.cfg.Webhook), f.cfg.Duplicates, f.cfg.Reorder, f.cfg.Drop)
	if f.contacts {
		if err := sim.RegisterContacts(ctx, state); err != nil {
			return fmt.Errorf("register contacts (--contacts=false to skip): %w", err)
		}
		fmt.Fprintf(out, "registered %d contacts at %s\n", f.cfg.ESIMs, state.c.base)
	}
	start := time.Now()
	stats, sendErr := sim.Send(ctx, simulate.Deps{Sign: sign, Client: &http.Client{Timeout: f.webhookPatience}, Provider: prov})
	if stats != nil {
		simulate.PrintStats(out, stats, time.Since(start))
	}
	if sendErr != nil {
		return sendErr
	}
	if f.check {
		res, err := sim.Check(ctx, state, prov, f.cfg.CheckTimeout, cmd.ErrOrStderr())
		if err != nil {
			return err
		}
		if len(res.Differences) > 0 {
			for i, d := range res.Differences {
				if i == 20 {
					fmt.Fprintf(out, "… %d differences in all\n", len(res.Differences))
					break
				}
				fmt.Fprintln(out, d)
			}
			return fmt.Errorf("check: esimflow differs from the truth after %v (%d differences)", res.Took.Round(100*time.Millisecond), len(res.Differences))
		}
		fmt.Fprintf(out, "check: esimflow holds the truth (%v after the last webhook): %d orders, %d profiles, %d messages sent of %d expected (%d may rightly be suppressed, %d unknowable: webhook dropped, never shown by a poll)\n",
			res.Took.Round(100*time.Millisecond), res.Orders, res.Profiles, res.Sent, res.Messages, res.Optional, res.Unknowable)
	}
	if prov != nil && !f.check {
		fmt.Fprintln(out, "serving the provider query API; Ctrl-C stops")
		<-ctx.Done()
	}
	return nil
}

// stateAPI is the internal API as the simulator reads and writes it.
type stateAPI struct{ c *apiClient }

func (s *stateAPI) Get(ctx context.Context, path string, out any) (bool, error) {
	err := s.c.getJSON(ctx, path, out)
	if errors.Is(err, errNotFound) {
		return false, nil
	}
	return err == nil, err
}

func (s *stateAPI) Put(ctx context.Context, path string, in any) error {
	body, err := json.Marshal(in)
	if err != nil {
		return fmt.Errorf("encode %s: %w", path, err)
	}
	status, answer, err := s.c.sendBody(ctx, http.MethodPut, path, body)
	if err != nil {
		return err
	}
	if status/100 != 2 {
		return fmt.Errorf("PUT %s%s: %w", s.c.base, path, &apiError{Status: status, Msg: errorMessage(answer)})
	}
	return nil
}
