package main

import (
	"fmt"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/esimflow/esimflow/notifier/template"
	"github.com/spf13/cobra"
)

func newNotifyCmd() *cobra.Command {
	notify := &cobra.Command{
		Use:   "notify",
		Short: "Customer messages",
	}
	notify.AddCommand(newNotifyPreviewCmd())
	return notify
}

func newNotifyPreviewCmd() *cobra.Command {
	var (
		kind, locale, name, iccid, used, total, dir, part string
		threshold                                         int
		days                                              int64
	)
	cmd := &cobra.Command{
		Use:   "preview",
		Short: "Render one customer message as the notifier would send it",
		Long: "Preview renders the template of a kind in a locale (falling back to English) with sample\n" +
			"data, from the built-in templates or those in --template-dir (ESIMFLOW_TEMPLATE_DIR).",
		Example: "  esimflow notify preview --kind low_data --threshold 80 --locale de --name Ana\n" +
			"  esimflow notify preview --kind validity_low --days 1 --part sms",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			k := template.Kind(kind)
			if !slices.Contains(template.Kinds, k) {
				return fmt.Errorf("--kind %q: want one of %v", kind, template.Kinds)
			}
			usedBytes, err := parseVolume(used)
			if err != nil {
				return fmt.Errorf("--used: %w", err)
			}
			totalBytes, err := parseVolume(total)
			if err != nil {
				return fmt.Errorf("--total: %w", err)
			}
			if k == template.DataExhausted && !cmd.Flags().Changed("threshold") {
				threshold = 100
			}
			set, err := template.New(dir)
			if err != nil {
				return err
			}
			r, err := set.Render(k, locale, template.Data{Name: name, ICCID: iccid, Threshold: threshold,
				UsedBytes: usedBytes, TotalBytes: totalBytes, RemainDays: days})
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			switch part {
			case "subject":
				fmt.Fprintln(out, cell(r.Subject))
			case "text":
				fmt.Fprintln(out, text(r.Text))
			case "html":
				fmt.Fprintln(out, text(r.HTML))
			case "sms":
				fmt.Fprintln(out, text(r.SMS))
			case "all":
				fmt.Fprintf(out, "Locale:  %s\nSubject: %s\n\n--- text\n%s\n\n--- sms (%d characters)\n%s\n\n--- html\n%s\n",
					cell(r.Locale), cell(r.Subject), text(r.Text), len([]rune(r.SMS)), text(r.SMS), text(r.HTML))
			default:
				return fmt.Errorf("--part %q: want all, subject, text, sms or html", part)
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&kind, "kind", "", fmt.Sprintf("message kind: %v", template.Kinds))
	f.StringVar(&locale, "locale", envOr("ESIMFLOW_NOTIFY_LOCALE", template.Fallback), "locale, e.g. en, de, es-MX")
	f.IntVar(&threshold, "threshold", 80, "low data: the usage percent crossed")
	f.StringVar(&name, "name", "Ana", "customer name (empty for none)")
	f.StringVar(&iccid, "iccid", "8901234567890123456", "iccid of the eSIM")
	f.StringVar(&used, "used", "800MB", "data used: bytes, or with KB, MB, GB")
	f.StringVar(&total, "total", "1GB", "plan volume: bytes, or with KB, MB, GB; 0 for unknown")
	f.Int64Var(&days, "days", 3, "validity low: days left")
	f.StringVar(&dir, "template-dir", os.Getenv("ESIMFLOW_TEMPLATE_DIR"), "directory of templates overriding the built-in ones")
	f.StringVar(&part, "part", "all", "what to print: all, subject, text, sms or html")
	_ = cmd.MarkFlagRequired("kind")
	return cmd
}

// parseVolume reads "1073741824", "800MB" or "1.5GB" (binary multiples, as
// plans are sold).
func parseVolume(s string) (int64, error) {
	v := strings.ToUpper(strings.TrimSpace(s))
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		m      int64
	}{{"GB", 1 << 30}, {"MB", 1 << 20}, {"KB", 1 << 10}, {"B", 1}} {
		if rest, ok := strings.CutSuffix(v, u.suffix); ok {
			v, mult = strings.TrimSpace(rest), u.m
			break
		}
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f < 0 {
		return 0, fmt.Errorf("%q: want a volume such as 800MB or 1.5GB", s)
	}
	return int64(f * float64(mult)), nil
}

func envOr(env, def string) string {
	if v := os.Getenv(env); v != "" {
		return v
	}
	return def
}
