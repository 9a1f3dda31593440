package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/esimflow/esimflow/processor"
	"github.com/spf13/cobra"
)

// newDLQCmd is `esimflow dlq`: the dead letters of ESIM_DLQ, through the
// internal API of a running esimflow.
func newDLQCmd(getenv func(string) string) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dlq",
		Short: "List, show, re-drive and purge dead letters (ESIM_DLQ)",
		Long: "Dead letters are events (and intents) that could not be processed, kept in ESIM_DLQ with\n" +
			"the error, the original subject and the delivery count. These commands talk to a running\n" +
			"esimflow's internal API (--api, ESIMFLOW_API_URL; --token, ESIMFLOW_ADMIN_TOKEN).",
	}
	flags := newAPIFlags(cmd, getenv)
	cmd.AddCommand(newDLQListCmd(flags), newDLQShowCmd(flags), newDLQRedriveCmd(flags), newDLQPurgeCmd(flags))
	return cmd
}

func newDLQListCmd(flags *apiFlags) *cobra.Command {
	var (
		source string
		limit  int
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List dead letters, oldest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := flags.client()
			if err != nil {
				return err
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "SEQ\tSOURCE\tDEAD AT\tDELIVERIES\tORIGINAL\tERROR")
			shown, after := 0, uint64(0)
			for shown < limit {
				q := url.Values{"after": {strconv.FormatUint(after, 10)}, "limit": {strconv.Itoa(min(limit-shown, 500))}}
				if source != "" {
					q.Set("source", source)
				}
				var page struct {
					DeadLetters []processor.DeadLetter `json:"deadLetters"`
					Next        uint64                 `json:"next"`
				}
				if err := c.do(cmd.Context(), http.MethodGet, "/v1/dlq?"+q.Encode(), &page); err != nil {
					return err
				}
				for _, d := range page.DeadLetters {
					fmt.Fprintf(w, "%d\t%s\t%s\t%d\t%s #%d\t%s\n", d.Seq, cell(d.Source), d.DeadAt.Local().Format(time.DateTime),
						d.Deliveries, cell(d.OriginalSubject), d.OriginalSeq, cell(oneLine(d.Error, 100)))
					shown++
				}
				if page.Next == 0 {
					break
				}
				after = page.Next
			}
			if err := w.Flush(); err != nil {
				return err
			}
			if shown == 0 {
				fmt.Fprintln(cmd.ErrOrStderr(), "no dead letters")
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&source, "source", "", "events or notify (default both)")
	cmd.Flags().IntVar(&limit, "limit", 100, "show at most this many")
	return cmd
}

func newDLQShowCmd(flags *apiFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "show SEQ",
		Short: "Show one dead letter with its headers and body",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			seq, err := parseSeq(args[0])
			if err != nil {
				return err
			}
			c, err := flags.client()
			if err != nil {
				return err
			}
			var d processor.DeadLetter
			if err := c.do(cmd.Context(), http.MethodGet, "/v1/dlq/"+seq, &d); err != nil {
				return fmt.Errorf("dead letter %s: %w", seq, err)
			}
			b, err := json.MarshalIndent(d, "", "  ")
			if err != nil {
				return err
			}
			return writeJSON(cmd.OutOrStdout(), append(b, '\n'))
		},
	}
}

func newDLQRedriveCmd(flags *apiFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "redrive SEQ...",
		Short: "Publish dead letters back to their original subject (original dedupe key and headers), then delete them",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := flags.client()
			if err != nil {
				return err
			}
			failed := 0
			for _, a := range args {
				seq, err := parseSeq(a)
				if err == nil {
					var res processor.Redriven
					if err = c.do(cmd.Context(), http.MethodPost, "/v1/dlq/"+seq+"/redrive", &res); err == nil {
						fmt.Fprintf(cmd.OutOrStdout(), "dead letter %s re-driven: %s #%d\n", seq, cell(res.Stream), res.StreamSeq)
						continue
					}
				}
				failed++
				fmt.Fprintf(cmd.ErrOrStderr(), "dead letter %s: %v\n", a, err)
			}
			if failed > 0 {
				return fmt.Errorf("%d of %d not re-driven", failed, len(args))
			}
			return nil
		},
	}
}

func newDLQPurgeCmd(flags *apiFlags) *cobra.Command {
	var (
		source string
		yes    bool
	)
	cmd := &cobra.Command{
		Use:   "purge [SEQ...]",
		Short: "Delete the given dead letters, or all of them (of --source); asks first unless --yes",
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := flags.client()
			if err != nil {
				return err
			}
			for _, a := range args {
				if _, err := parseSeq(a); err != nil {
					return err
				}
			}
			what := "dead letters " + strings.Join(args, ", ")
			if len(args) == 0 {
				what = "ALL dead letters"
				if source != "" {
					what += " of " + source
				}
			}
			if !yes && !confirm(cmd.InOrStdin(), cmd.ErrOrStderr(), "Delete "+what+" for good?") {
				return fmt.Errorf("not confirmed: nothing deleted")
			}
			if len(args) == 0 {
				q := ""
				if source != "" {
					q = "?source=" + url.QueryEscape(source)
				}
				var res struct{ Purged uint64 }
				if err := c.do(cmd.Context(), http.MethodDelete, "/v1/dlq"+q, &res); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "%d dead letters deleted\n", res.Purged)
				return nil
			}
			for _, seq := range args {
				if err := c.do(cmd.Context(), http.MethodDelete, "/v1/dlq/"+seq, nil); err != nil {
					return fmt.Errorf("dead letter %s: %w", seq, err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "dead letter %s deleted\n", seq)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&source, "source", "", "with no SEQ: purge only events or notify dead letters")
	cmd.Flags().BoolVarP(&yes, "yes", "y", false, "do not ask for confirmation")
	return cmd
}

// confirm asks a yes/no question on out and reads the answer from in.
func confirm(in io.Reader, out io.Writer, question string) bool {
	fmt.Fprintf(out, "%s [y/N] ", question)
	line, _ := bufio.NewReader(in).ReadString('\n')
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return true
	}
	return false
}

func parseSeq(s string) (string, error) {
	n, err := strconv.ParseUint(s, 10, 64)
	if err != nil || n == 0 {
		return "", fmt.Errorf("%q: want a dead letter's sequence number (see esimflow dlq list)", s)
	}
	return strconv.FormatUint(n, 10), nil
}

func oneLine(s string, max int) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > max {
		return s[:max-1] + "…"
	}
	return s
}
