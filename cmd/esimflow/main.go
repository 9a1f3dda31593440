// Command esimflow is the all-in-one binary and the operator CLI.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/esimflow/esimflow/cmd/esimflow/allinone"
	"github.com/esimflow/esimflow/shared/config"
	"github.com/esimflow/esimflow/shared/service"
	"github.com/esimflow/esimflow/shared/telemetry"
	"github.com/spf13/cobra"
)

func main() {
	if err := newRoot().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "esimflow:", err)
		os.Exit(1)
	}
}

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "esimflow",
		Short:         "eSIM webhook event pipeline: ingest, processor, notifier",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newRunCmd())
	root.AddCommand(newWebhookCmd(os.Getenv))
	root.AddCommand(newDLQCmd(os.Getenv))
	root.AddCommand(newReplayCmd(os.Getenv))
	root.AddCommand(newNotifyCmd())
	root.AddCommand(newStatusCmd(os.Getenv))
	root.AddCommand(newOrderCmd(os.Getenv))
	root.AddCommand(newProfileCmd(os.Getenv))
	root.AddCommand(newConsoleCmd(os.Getenv))
	root.AddCommand(newProvidersCmd(os.Getenv))
	root.AddCommand(newSimulateCmd(os.Getenv))
	return root
}

// memoryLimit is the all-in-one's soft heap limit unless GOMEMLIMIT is set:
// the embedded server's buffers grow with the load, and with fsync relaxed the
// whole process peaked at 184 MiB under the benchmark's full load; a laptop
// mode should stay small, and the collector works harder instead near it.
// Not lower: after ~100 k events the live heap (the server's block caches
// and duplicate window) passes 64 MiB, and a limit below it only burns CPU
// (docs/adr/0014).
const memoryLimit = 100 << 20

func newRunCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "run",
		Short: "Run the whole system in one process (embedded NATS unless ESIMFLOW_NATS_URL is set)",
		Long: "Run starts ingest, processor and notifier in one process. With no settings it starts an\n" +
			"embedded NATS server with JetStream (data in ./data) and keeps state in NATS KV; set\n" +
			"ESIMFLOW_NATS_URL and ESIMFLOW_REDIS_URL to use external servers. Customer messages are\n" +
			"printed on standard output.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			if os.Getenv("GOMEMLIMIT") == "" {
				debug.SetMemoryLimit(memoryLimit)
			}
			cfg, err := config.Load(os.Getenv)
			if err != nil {
				return fmt.Errorf("configuration: %w", err)
			}
			log := service.Logger(cfg.Log)
			log.Info("starting", "config", cfg)
			tp, shutdownTracing, err := telemetry.Setup(ctx, "esimflow", os.Getenv)
			if err != nil {
				return err
			}
			defer func() { _ = shutdownTracing(context.WithoutCancel(ctx)) }()
			err = allinone.Run(ctx, cfg, allinone.Deps{Logger: log, Messages: os.Stdout, Banner: os.Stderr, Tracer: tp})
			if err == nil || ctx.Err() != nil && err == context.Canceled {
				log.Info("stopped cleanly")
				return nil
			}
			return err
		},
	}
}
