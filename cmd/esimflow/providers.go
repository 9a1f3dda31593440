package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/esimflow/esimflow/shared/event"
	"github.com/esimflow/esimflow/shared/provider"
	"github.com/spf13/cobra"
)

func newProvidersCmd(getenv func(string) string) *cobra.Command {
	cmd := &cobra.Command{Use: "providers", Short: "The provider adapters: list them, check a mapping file against a sample"}
	cmd.AddCommand(&cobra.Command{
		Use:   "list",
		Short: "List the providers ingest mounts at /webhooks/{provider} (built-ins and ESIMFLOW_PROVIDERS_DIR)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			reg, err := provider.Load(getenv("ESIMFLOW_PROVIDERS_DIR"), provider.Options{})
			if err != nil {
				return err
			}
			for _, n := range reg.Names() {
				a, _ := reg.Get(n)
				fmt.Fprintf(cmd.OutOrStdout(), "%-12s adapter %s\n", n, a.Version())
			}
			return nil
		},
	})
	cmd.AddCommand(&cobra.Command{
		Use:   "check FILE|PROVIDER SAMPLE.json",
		Short: "Print the canonical events a sample maps to, or why it maps to none",
		Long: "check reads SAMPLE.json with the mapping file FILE (or the built-in PROVIDER) as ingest\n" +
			"and the processor would, and prints each canonical event it holds, or the precise error\n" +
			"(which rule, which field, which path, which value). It exits non-zero when the file is\n" +
			"invalid, the sample is not JSON, an event cannot be read, or no rule applies.",
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			a, err := adapterOf(args[0])
			if err != nil {
				return err
			}
			body, err := os.ReadFile(args[1])
			if err != nil {
				return err
			}
			return checkSample(cmd.OutOrStdout(), a, body)
		},
	})
	return cmd
}

// adapterOf is the adapter of a mapping file, or the built-in one of that
// name.
func adapterOf(arg string) (provider.Adapter, error) {
	if _, err := os.Stat(arg); err == nil {
		return provider.LoadFile(arg)
	}
	reg, err := provider.Load("", provider.Options{})
	if err != nil {
		return nil, err
	}
	if a, ok := reg.Get(arg); ok {
		return a, nil
	}
	return nil, fmt.Errorf("%s: no such file, nor a built-in provider (%s)", arg, strings.Join(reg.Names(), ", "))
}

// checkSample prints the sample's events; the error says what failed.
func checkSample(out io.Writer, a provider.Adapter, body []byte) error {
	evs := a.Decode(event.Decoder{}, body)
	failed := 0
	for i, d := range evs {
		if d.Err != nil {
			failed++
			fmt.Fprintf(out, "event %d: %s: %v\n", i, d.Event.Type, d.Err)
			continue
		}
		if d.Event.Type == event.Unknown {
			why := "no rule applies"
			if ex, ok := a.(interface{ Explain([]byte) string }); ok {
				why += ":\n" + strings.TrimRight(ex.Explain(body), "\n")
			}
			failed++
			fmt.Fprintf(out, "event %d: UNKNOWN (kept and parked, drives nothing): %s\n", i, why)
			continue
		}
		data, _ := json.MarshalIndent(d.Event, "", "  ")
		fmt.Fprintf(out, "event %d: %s\n%s\n", i, d.Event.Type, data)
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d events not read (above)", failed, len(evs))
	}
	return nil
}
