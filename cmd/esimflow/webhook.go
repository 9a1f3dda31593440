package main

import (
	neturl "net/url"
	"path"

	"bytes"
	"context"
	"fmt"
	"github.com/esimflow/esimflow/shared/redact"
	"io"
	"net/http"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/esimflow/esimflow/cmd/esimflow/provider"
	"github.com/esimflow/esimflow/cmd/esimflow/samples"
	"github.com/esimflow/esimflow/ingest/verify"
	"github.com/esimflow/esimflow/shared/config"
	"github.com/esimflow/esimflow/shared/event"
	adapters "github.com/esimflow/esimflow/shared/provider"
	"github.com/spf13/cobra"
)

func newWebhookCmd(getenv func(string) string) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "webhook",
		Short: "Register esimflow's URL with the provider, or send it sample events",
	}
	cmd.AddCommand(newWebhookSetCmd(getenv), newWebhookTestCmd(getenv))
	return cmd
}

func newWebhookSetCmd(getenv func(string) string) *cobra.Command {
	var url, base, access, secret, providerName, clientID, clientSecret string
	var notifications []string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "set --url URL [--provider esimaccess|airalo]",
		Short: "Set the provider account's webhook URL (eSIM Access: POST /api/v1/open/webhook/save; Airalo: POST /v2/notifications/opt-in)",
		Long: "Set calls the provider's API with the RT-AccessCode and RT-SecretKey headers. Credentials come\n" +
			"from the flags or from ESIMFLOW_PROVIDER_API_URL, ESIMFLOW_PROVIDER_ACCESS_CODE and\n" +
			"ESIMFLOW_PROVIDER_SECRET_KEY; they are never printed. Failed calls (5xx, timeouts) are retried.\n" +
			"With --provider airalo it opts the URL in to each --notification type with an access token\n" +
			"from the client credentials (--client-id/--client-secret or ESIMFLOW_AIRALO_CLIENT_ID,\n" +
			"ESIMFLOW_AIRALO_CLIENT_SECRET; API base --api-base or ESIMFLOW_AIRALO_API_URL).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if url == "" {
				return fmt.Errorf("--url is required")
			}
			switch providerName {
			case "", adapters.Default:
			case "airalo":
				a, err := provider.NewAiralo(orEnv(base, getenv, "ESIMFLOW_AIRALO_API_URL"),
					orEnv(clientID, getenv, "ESIMFLOW_AIRALO_CLIENT_ID"), orEnv(clientSecret, getenv, "ESIMFLOW_AIRALO_CLIENT_SECRET"), timeout)
				if err != nil {
					return err
				}
				for _, typ := range notifications {
					if err := a.OptIn(cmd.Context(), typ, url); err != nil {
						return fmt.Errorf("opt-in %s: %w", typ, err)
					}
					fmt.Fprintf(cmd.OutOrStdout(), "airalo %s set to %s\n", typ, maskPathToken(url))
				}
				return nil
			default:
				return fmt.Errorf("--provider %s: no API to register a webhook with; register %s by hand (docs/providers.md)", providerName, maskPathToken(url))
			}
			c, err := provider.New(orEnv(base, getenv, "ESIMFLOW_PROVIDER_API_URL"), provider.Credentials{
				AccessCode: orEnv(access, getenv, "ESIMFLOW_PROVIDER_ACCESS_CODE"),
				SecretKey:  orEnv(secret, getenv, "ESIMFLOW_PROVIDER_SECRET_KEY"),
			}, timeout)
			if err != nil {
				return err
			}
			if err := c.SetWebhook(cmd.Context(), url); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "webhook set to %s\n", maskPathToken(url))
			return nil
		},
	}
	cmd.Flags().StringVar(&url, "url", "", "the URL the provider is to POST events to")
	cmd.Flags().StringVar(&base, "api-base", "", "provider API base URL (default $ESIMFLOW_PROVIDER_API_URL)")
	cmd.Flags().StringVar(&access, "access-code", "", "RT-AccessCode (default $ESIMFLOW_PROVIDER_ACCESS_CODE)")
	cmd.Flags().StringVar(&secret, "secret-key", "", "RT-SecretKey (default $ESIMFLOW_PROVIDER_SECRET_KEY)")
	cmd.Flags().DurationVar(&timeout, "timeout", 10*time.Second, "timeout of each attempt")
	cmd.Flags().StringVar(&providerName, "provider", "", "esimaccess (default: webhook/save) or airalo (notifications/opt-in per --notification)")
	cmd.Flags().StringVar(&clientID, "client-id", "", "Airalo client id (default $ESIMFLOW_AIRALO_CLIENT_ID)")
	cmd.Flags().StringVar(&clientSecret, "client-secret", "", "Airalo client secret (default $ESIMFLOW_AIRALO_CLIENT_SECRET)")
	cmd.Flags().StringSliceVar(&notifications, "notification", []string{"webhook_low_data"}, "Airalo notification types to opt the URL in to")
	return cmd
}

func newWebhookTestCmd(getenv func(string) string) *cobra.Command {
	var url, types, providerName string
	var timeout time.Duration
	cmd := &cobra.Command{
		Use:   "test --url URL [--type ORDER_STATUS,DATA_USAGE,...]",
		Short: "Send a sample event of each type to an endpoint, signed as ingest is configured, and report the answers",
		Long: "Test does what the provider's test tool does: it POSTs one sample of each event type and\n" +
			"format, signs it with the ingest settings in the environment (ESIMFLOW_INGEST_HMAC_SECRETS,\n" +
			"ESIMFLOW_INGEST_SIGNATURE_*), and prints each answer. Put a path token in --url.\n" +
			"With --provider, it sends that provider's samples to its endpoint (--url\n" +
			"http://127.0.0.1:8080/webhooks/airalo), signed as the provider signs with the provider's\n" +
			"entry in ESIMFLOW_PROVIDER_SECRETS (unsigned when it has none).\n" +
			"It exits non-zero if any answer is not 200.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if url == "" {
				return fmt.Errorf("--url is required")
			}
			cfg, err := config.Load(getenv)
			if err != nil {
				return fmt.Errorf("configuration: %w", err)
			}
			if providerName != "" && providerName != adapters.Default {
				return testProvider(cmd, cfg, providerName, url, timeout)
			}
			sign, err := signer(cfg.Ingest)
			if err != nil {
				return err
			}
			all, err := samples.All()
			if err != nil {
				return err
			}
			want := strings.Split(strings.ToUpper(types), ",")
			client := &http.Client{Timeout: timeout}
			out := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(out, "SAMPLE\tTYPE\tSTATUS\tTIME\tANSWER")
			failed, sent := 0, 0
			for _, s := range all {
				if types != "" && !slices.Contains(want, s.Type) {
					continue
				}
				sent++
				status, answer, took := post(cmd.Context(), client, url, s.Body, sign)
				if status != http.StatusOK {
					failed++
				}
				fmt.Fprintf(out, "%s\t%s\t%s\t%s\t%s\n", s.Name, s.Type, statusText(status), took.Round(time.Millisecond), answer)
			}
			if err := out.Flush(); err != nil {
				return err
			}
			if sent == 0 {
				return fmt.Errorf("no sample of type %s", types)
			}
			if failed > 0 {
				return fmt.Errorf("%d of %d samples were not answered 200", failed, sent)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&url, "url", "", "the webhook endpoint, e.g. http://127.0.0.1:8080/webhooks/esim")
	cmd.Flags().StringVar(&types, "type", "", "only these event types, comma-separated")
	cmd.Flags().StringVar(&providerName, "provider", "", "send this provider's samples, signed its way with its ESIMFLOW_PROVIDER_SECRETS entry (airalo, esimgo, roamify, oneglobal); default the default provider's")
	cmd.Flags().DurationVar(&timeout, "timeout", 10*time.Second, "timeout of each request")
	return cmd
}

// signer returns what adds the configured signature headers to a request.
func signer(cfg config.Ingest) (func(*http.Request, []byte), error) {
	var sw *verify.StandardWebhooks
	if len(cfg.HMACSecrets) > 0 {
		var err error
		if sw, err = verify.NewStandardWebhooks(cfg.HMACSecrets, cfg.HMACTolerance, time.Now); err != nil {
			return nil, err
		}
	}
	var hh *verify.HeaderHMAC
	if len(cfg.SignatureSecrets) > 0 {
		hh = verify.NewHeaderHMAC(cfg.SignatureHeader, cfg.SignatureEncoding, cfg.SignatureSecrets)
	}
	return func(r *http.Request, body []byte) {
		if sw != nil {
			id, now := fmt.Sprintf("msg_test_%d", time.Now().UnixNano()), time.Now()
			r.Header.Set("webhook-id", id)
			r.Header.Set("webhook-timestamp", fmt.Sprint(now.Unix()))
			r.Header.Set("webhook-signature", sw.Sign(id, now, body))
		}
		if hh != nil {
			r.Header.Set(hh.Header(), hh.Sign(body))
		}
	}, nil
}

func post(ctx context.Context, c *http.Client, url string, body []byte, sign func(*http.Request, []byte)) (int, string, time.Duration) {
	start := time.Now()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, err.Error(), 0
	}
	req.Header.Set("Content-Type", "application/json")
	sign(req, body)
	resp, err := c.Do(req)
	if err != nil {
		return 0, err.Error(), time.Since(start)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
	return resp.StatusCode, strings.TrimSpace(string(b)), time.Since(start)
}

func statusText(code int) string {
	if code == 0 {
		return "error"
	}
	return fmt.Sprint(code)
}

func orEnv(flag string, getenv func(string) string, env string) string {
	if flag != "" {
		return flag
	}
	return getenv(env)
}

// maskPathToken hides the path token of a webhook URL
// (https://host/webhooks/esim/<token>) and the URL's own secrets: the output
// of a command ends up in terminals' scrollback and CI logs.
func maskPathToken(raw string) string {
	u, err := neturl.Parse(redact.URL(raw))
	if err != nil {
		return "(unprintable URL)"
	}
	dir, token := path.Split(u.Path)
	// A bare endpoint (…/webhooks/esim, …/webhooks/airalo) carries no
	// token: a token is the segment after the provider's.
	i := strings.LastIndex(dir, "/webhooks/")
	if token != "" && i >= 0 && len(dir) > i+len("/webhooks/") {
		// The first characters of a long token tell two apart; a short
		// one shows nothing.
		shown := ""
		if len(token) >= 16 {
			shown = token[:4]
		}
		u.Path = dir + shown + "(hidden)"
		u.RawPath = u.Path
	}
	return u.String()
}

// testProvider sends a provider's samples, signed its way, and reports the
// answers with the canonical type each sample reads as.
func testProvider(cmd *cobra.Command, cfg config.Config, name, url string, timeout time.Duration) error {
	reg, err := adapters.Load(cfg.ProvidersDir, adapters.Options{})
	if err != nil {
		return err
	}
	a, ok := reg.Get(name)
	if !ok {
		return fmt.Errorf("--provider %s: no such provider (%s)", name, strings.Join(reg.Names(), ", "))
	}
	all, err := samples.ForProvider(name)
	if err != nil {
		return err
	}
	if len(all) == 0 {
		return fmt.Errorf("--provider %s: no samples to send (Telna's SNS messages are signed by AWS: subscribe the endpoint to a topic instead)", name)
	}
	v, err := a.Verifier(cfg.Ingest.ProviderSecretsOf()[name])
	if err != nil {
		return err
	}
	sign := func(*http.Request, []byte) {}
	if v != nil {
		s, ok := v.(adapters.Signer)
		if !ok {
			return fmt.Errorf("--provider %s: its requests cannot be signed here", name)
		}
		sign = func(r *http.Request, body []byte) {
			h, val := s.Sign(body)
			r.Header.Set(h, val)
		}
	} else {
		fmt.Fprintf(cmd.ErrOrStderr(), "no ESIMFLOW_PROVIDER_SECRETS entry for %s: sending unsigned\n", name)
	}
	client := &http.Client{Timeout: timeout}
	out := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
	fmt.Fprintln(out, "SAMPLE\tTYPE\tSTATUS\tTIME\tANSWER")
	failed := 0
	for _, s := range all {
		var typs []string
		for _, d := range a.Decode(event.Decoder{}, s.Body) {
			typs = append(typs, string(d.Event.Type))
		}
		status, answer, took := post(cmd.Context(), client, url, s.Body, sign)
		if status != http.StatusOK {
			failed++
		}
		fmt.Fprintf(out, "%s\t%s\t%s\t%s\t%s\n", s.Name, strings.Join(typs, "+"), statusText(status), took.Round(time.Millisecond), answer)
	}
	if err := out.Flush(); err != nil {
		return err
	}
	if failed > 0 {
		return fmt.Errorf("%d of %d samples were not answered 200", failed, len(all))
	}
	return nil
}
