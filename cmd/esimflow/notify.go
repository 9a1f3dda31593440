package main

import (
	"fmt"
	"io"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/esimflow/esimflow/notifier/channel"
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
		code, installURL, qrURL, topUpURL                 string
		threshold                                         int
		days                                              int64
	)
	cmd := &cobra.Command{
		Use:   "preview",
		Short: "Render one customer message as the notifier would send it",
		Long: "Preview renders the template of a kind in a locale (falling back to English) with sample\n" +
			"data, from the built-in templates or those in --template-dir (ESIMFLOW_TEMPLATE_DIR);\n" +
			"--locale all renders it in every locale there is. The activation carries the activation\n" +
			"code, the iOS install link and (in email) the QR code; low-data and validity messages the\n" +
			"top-up link. --part vars prints the WhatsApp template's name and parameters.",
		Example: "  esimflow notify preview --kind low_data --threshold 80 --locale de --name Ana\n" +
			"  esimflow notify preview --kind activation --locale all --part text\n" +
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
			if !slices.Contains([]string{"all", "subject", "text", "html", "sms", "vars"}, part) {
				return fmt.Errorf("--part %q: want all, subject, text, sms, html or vars", part)
			}
			d := template.Data{Name: name, ICCID: iccid, Threshold: threshold, UsedBytes: usedBytes, TotalBytes: totalBytes, RemainDays: days}
			if k == template.Activation {
				d.ActivationCode, d.InstallURL, d.QRCodeURL, d.QRInline = code, installURL, qrURL, code != ""
			} else {
				d.TopUpURL = strings.NewReplacer("{iccid}", url.QueryEscape(iccid), "{orderNo}", "ORD-1", "{transactionId}", "tx-1").Replace(topUpURL)
			}
			locales := []string{locale}
			if locale == "all" {
				locales = set.Locales()
			}
			out := cmd.OutOrStdout()
			for i, loc := range locales {
				r, err := set.Render(k, loc, d)
				if err != nil {
					return err
				}
				if len(locales) > 1 {
					if i > 0 {
						fmt.Fprintln(out)
					}
					fmt.Fprintf(out, "=== %s\n", cell(r.Locale))
				}
				printPart(out, part, k, r)
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
	f.StringVar(&part, "part", "all", "what to print: all, subject, text, sms, html or vars (WhatsApp parameters)")
	f.StringVar(&code, "activation-code", "LPA:1$rsp.example.com$K2-1A2B3C-4D5E6F", "activation: the LPA activation code (empty for none)")
	f.StringVar(&installURL, "install-url", "", "activation: the provider's install page")
	f.StringVar(&qrURL, "qr-url", "", "activation: the provider's QR code image, used when there is no activation code")
	f.StringVar(&topUpURL, "topup-url", envOr("ESIMFLOW_TOPUP_URL", "https://shop.example/topup?iccid={iccid}"), "the reseller's top-up link ({iccid}, {orderNo}, {transactionId}); empty for none")
	_ = cmd.MarkFlagRequired("kind")
	return cmd
}

// printPart prints one part of a rendered message.
func printPart(out io.Writer, part string, k template.Kind, r template.Rendered) {
	switch part {
	case "subject":
		fmt.Fprintln(out, cell(r.Subject))
	case "text":
		fmt.Fprintln(out, text(r.Text))
	case "html":
		fmt.Fprintln(out, text(r.HTML))
	case "sms":
		fmt.Fprintln(out, text(r.SMS))
	case "vars":
		fmt.Fprintf(out, "WhatsApp template: esimflow_%s (%s)\n", k, channel.WhatsAppLanguage(r.Locale))
		for _, p := range channel.WhatsAppParams[string(k)] {
			fmt.Fprintf(out, "  %s = %s\n", p, cell(r.Vars[p]))
		}
	default:
		fmt.Fprintf(out, "Locale:  %s\nSubject: %s\n\n--- text\n%s\n\n--- sms (%d characters)\n%s\n\n--- html\n%s\n",
			cell(r.Locale), cell(r.Subject), text(r.Text), len([]rune(r.SMS)), text(r.SMS), text(r.HTML))
	}
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
