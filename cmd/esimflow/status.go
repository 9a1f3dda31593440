package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/esimflow/esimflow/shared/admin"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/spf13/cobra"
)

func newStatusCmd(getenv func(string) string) *cobra.Command {
	var asJSON, watch bool
	var api *apiFlags
	var interval time.Duration
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show streams, consumer lag, redeliveries, dead letters and each service's readiness",
		Long: "Status reads the internal API of each service given with --api (default " + defaultAPI + ",\n" +
			"the all-in-one): /readyz for readiness, /v1/status for the streams and consumers as NATS\n" +
			"reports them, and /metrics for the counters, summed over the services. With --watch it\n" +
			"refreshes every --interval until Ctrl-C. Without --watch it exits non-zero when a service\n" +
			"is unreachable or not ready.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			clients, err := api.clients()
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			if !watch {
				r := collectStatus(cmd.Context(), clients)
				if err := printStatus(out, r, asJSON); err != nil {
					return err
				}
				return r.err()
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			tick := time.NewTicker(interval)
			defer tick.Stop()
			for {
				r := collectStatus(ctx, clients)
				if ctx.Err() != nil {
					return nil
				}
				var page bytes.Buffer
				if isTerminal(out) {
					page.WriteString("\x1b[H\x1b[2J") // home and clear, as watch(1) does
				}
				if err := printStatus(&page, r, asJSON); err != nil {
					return err
				}
				if _, err := out.Write(page.Bytes()); err != nil {
					return err
				}
				select {
				case <-ctx.Done():
					return nil
				case <-tick.C:
				}
			}
		},
	}
	api = newAPIFlags(cmd, getenv)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON instead of a table")
	cmd.Flags().BoolVarP(&watch, "watch", "w", false, "refresh until Ctrl-C")
	cmd.Flags().DurationVar(&interval, "interval", 2*time.Second, "refresh interval of --watch")
	return cmd
}

// statusReport is what `esimflow status` shows, and its --json output.
type statusReport struct {
	At       time.Time            `json:"at"`
	Services []serviceStatus      `json:"services"`
	Streams  []admin.StreamStatus `json:"streams"`
	// Counters are esimflow's counters summed over the services, by the
	// value of their outcome label, or kind label, ("" for neither).
	Counters map[string]map[string]float64 `json:"counters"`
}

type serviceStatus struct {
	API    string            `json:"api"`
	Ready  bool              `json:"ready"`
	Checks map[string]string `json:"checks,omitempty"`
	Error  string            `json:"error,omitempty"`
}

func (r statusReport) err() error {
	var bad []string
	for _, s := range r.Services {
		if !s.Ready {
			bad = append(bad, s.API)
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("not ready: %s", strings.Join(bad, ", "))
	}
	return nil
}

// counters are the esimflow counters status sums, with the words it shows.
var counters = []struct{ name, title string }{
	{"esimflow_webhooks_received_total", "webhooks received"},
	{"esimflow_events_processed_total", "events processed"},
	{"esimflow_events_dead_lettered_total", "events dead-lettered"},
	{"esimflow_intents_published_total", "intents published"},
	{"esimflow_notifications_total", "notifications"},
	// The reconciler's, by provider: its query calls, and what it learnt
	// that no webhook had said (missed webhooks, install data).
	{"esimflow_reconcile_polls_total", "provider polls"},
	{"esimflow_reconcile_events_total", "learnt by polling"},
}

func collectStatus(ctx context.Context, clients []*apiClient) statusReport {
	r := statusReport{At: time.Now().UTC().Truncate(time.Second), Streams: []admin.StreamStatus{}, Counters: map[string]map[string]float64{}}
	var streamsErr []string
	for _, c := range clients {
		svc := serviceStatus{API: c.base}
		status, body, err := c.get(ctx, "/readyz")
		switch {
		case err != nil:
			svc.Error = err.Error()
		case status != http.StatusOK && status != http.StatusServiceUnavailable:
			svc.Error = fmt.Sprintf("/readyz: %d", status)
		default:
			svc.Ready = status == http.StatusOK
			if err := json.Unmarshal(body, &svc.Checks); err != nil {
				svc.Ready, svc.Error = false, "/readyz: "+err.Error()
			}
		}
		r.Services = append(r.Services, svc)
		if svc.Error != "" {
			continue
		}
		if len(r.Streams) == 0 {
			// Every service serves the same figures: the first answer will do.
			var st admin.Status
			if err := c.getJSON(ctx, "/v1/status", &st); err != nil {
				streamsErr = append(streamsErr, err.Error())
			} else {
				r.Streams = st.Streams
			}
		}
		if err := addCounters(ctx, c, r.Counters); err != nil {
			svc := &r.Services[len(r.Services)-1]
			svc.Error = err.Error()
		}
	}
	if len(r.Streams) == 0 && len(streamsErr) > 0 {
		r.Streams = append(r.Streams, admin.StreamStatus{Name: "?", Error: strings.Join(streamsErr, "; ")})
	}
	return r
}

// addCounters adds the API's esimflow counters into sum.
func addCounters(ctx context.Context, c *apiClient, sum map[string]map[string]float64) error {
	status, body, err := c.get(ctx, "/metrics")
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return fmt.Errorf("/metrics: %d", status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("/metrics: %w", err)
	}
	for _, want := range counters {
		fam, ok := families[want.name]
		if !ok {
			continue
		}
		if sum[want.name] == nil {
			sum[want.name] = map[string]float64{}
		}
		for _, m := range fam.GetMetric() {
			outcome, kind, provider := "", "", ""
			for _, l := range m.GetLabel() {
				switch l.GetName() {
				case "outcome":
					outcome = l.GetValue()
				case "kind", "type":
					kind = l.GetValue()
				case "provider":
					provider = l.GetValue()
				}
			}
			if outcome == "" {
				outcome = kind
			}
			if provider != "" {
				outcome = provider + ":" + outcome
			}
			sum[want.name][outcome] += m.GetCounter().GetValue()
		}
	}
	return nil
}

func printStatus(w io.Writer, r statusReport, asJSON bool) error {
	if asJSON {
		b, err := json.MarshalIndent(r, "", "  ")
		if err != nil {
			return err
		}
		return writeJSON(w, append(b, '\n'))
	}
	fmt.Fprintf(w, "esimflow status at %s\n\n", r.At.Format(time.RFC3339))

	tw := newTable(w)
	fmt.Fprintln(tw, "SERVICE API\tREADY\tCHECKS")
	for _, s := range r.Services {
		ready, checks := "yes", joinChecks(s.Checks)
		if !s.Ready {
			ready = "NO"
		}
		if s.Error != "" {
			checks = s.Error
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", cell(s.API), ready, cell(checks))
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "STREAM\tMESSAGES\tBYTES\tFIRST\tLAST\tREPLICAS\tLEADER")
	for _, s := range r.Streams {
		if s.Error != "" {
			fmt.Fprintf(tw, "%s\terror: %s\n", cell(s.Name), cell(s.Error))
			continue
		}
		fmt.Fprintf(tw, "%s\t%d\t%s\t%d\t%d\t%d\t%s\n", cell(s.Name), s.Messages, bytesText(float64(s.Bytes)), s.FirstSeq, s.LastSeq, s.Replicas, cell(orDash(s.Leader)))
	}
	fmt.Fprintln(tw)
	fmt.Fprintln(tw, "CONSUMER\tSTREAM\tLAG\tACK PENDING\tREDELIVERED\tWAITING\tDELIVERED")
	for _, s := range r.Streams {
		for _, c := range s.Consumers {
			fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\n", cell(c.Name), cell(s.Name), c.Pending, c.AckPending, c.Redelivered, c.Waiting, c.Delivered)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, s := range r.Streams {
		if strings.HasSuffix(s.Name, "ESIM_DLQ") && s.Error == "" {
			fmt.Fprintf(w, "\ndead letters: %d in %s\n", s.Messages, cell(s.Name))
		}
	}

	fmt.Fprintln(w)
	tw = newTable(w)
	fmt.Fprintln(tw, "COUNTER\tTOTAL\tBY OUTCOME OR KIND")
	for _, c := range counters {
		by, ok := r.Counters[c.name]
		if !ok {
			continue
		}
		var total float64
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(by)) {
			total += by[k]
			if k != "" {
				parts = append(parts, fmt.Sprintf("%s=%g", cell(k), by[k]))
			}
		}
		fmt.Fprintf(tw, "%s\t%g\t%s\n", c.title, total, strings.Join(parts, " "))
	}
	return tw.Flush()
}

func joinChecks(checks map[string]string) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(checks)) {
		parts = append(parts, k+"="+checks[k])
	}
	return orDash(strings.Join(parts, " "))
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

// isTerminal reports whether w is a terminal, where --watch redraws in place.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}
