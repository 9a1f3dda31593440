// Package provider is a client of the providers' APIs (eSIM Access, Airalo), for the calls
// the operator CLI makes: registering the webhook URL.
package provider

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"time"

	"github.com/esimflow/esimflow/shared/redact"
	"github.com/hashicorp/go-retryablehttp"
)

// Credentials authenticate calls: the RT-AccessCode and RT-SecretKey headers.
// They are never printed; String redacts them.
type Credentials struct {
	AccessCode string
	SecretKey  string
}

// String keeps the credentials out of logs and error messages.
func (Credentials) String() string { return "[redacted]" }

// Client calls the provider's API at a base URL.
type Client struct {
	base  string
	creds Credentials
	http  *http.Client
}

// New returns a client. Calls time out after timeout each and are retried,
// with backoff, on connection errors, 429 and 5xx.
func New(base string, creds Credentials, timeout time.Duration) (*Client, error) {
	if base == "" {
		return nil, errors.New("provider API URL is required (--api-base or ESIMFLOW_PROVIDER_API_URL)")
	}
	u, err := url.Parse(base)
	if err != nil || u.Hostname() == "" || (u.Scheme != "https" && (u.Scheme != "http" || !loopback(u.Hostname()))) {
		return nil, fmt.Errorf("provider API URL %q: want https:// (http:// only to loopback): the requests carry the secret key", redact.URL(base))
	}
	if creds.AccessCode == "" || creds.SecretKey == "" {
		return nil, errors.New("provider access code and secret key are required (--access-code/--secret-key or ESIMFLOW_PROVIDER_ACCESS_CODE/ESIMFLOW_PROVIDER_SECRET_KEY)")
	}
	return &Client{base: strings.TrimRight(base, "/"), creds: creds, http: retrying(timeout)}, nil
}

// retrying is the HTTP client of every provider API call: retried with
// backoff on connection errors, 429 and 5xx, each attempt bounded by
// timeout.
func retrying(timeout time.Duration) *http.Client {
	rc := retryablehttp.NewClient()
	rc.Logger = nil
	rc.RetryMax = 3
	rc.RetryWaitMin = 500 * time.Millisecond
	rc.RetryWaitMax = 4 * time.Second
	rc.HTTPClient.Timeout = timeout
	// No redirect is followed, by the retrying client or by the standard
	// client around it: a redirect would carry the credentials to wherever
	// the answer points. A 3xx is reported instead.
	rc.HTTPClient.CheckRedirect = noRedirects
	// Give back the last response instead of a generic error, so the
	// provider's own message can be shown.
	rc.ErrorHandler = retryablehttp.PassthroughErrorHandler
	std := rc.StandardClient()
	std.CheckRedirect = noRedirects
	return std
}

// checkBase accepts an API base URL: https, or http to loopback only (the
// requests carry secrets).
func checkBase(base, setting string) error {
	if base == "" {
		return fmt.Errorf("provider API URL is required (--api-base or %s)", setting)
	}
	u, err := url.Parse(base)
	if err != nil || u.Hostname() == "" || (u.Scheme != "https" && (u.Scheme != "http" || !loopback(u.Hostname()))) {
		return fmt.Errorf("provider API URL %q: want https:// (http:// only to loopback): the requests carry secrets", redact.URL(base))
	}
	return nil
}

// APIError is a refusal by the provider, with its own code and message.
type APIError struct {
	Status int
	Code   string
	Msg    string
}

func (e *APIError) Error() string {
	return fmt.Sprintf("provider refused (HTTP %d): errorCode=%s errorMsg=%s", e.Status, e.Code, e.Msg)
}

// reply is the provider's answer envelope.
type reply struct {
	Success   bool            `json:"success"`
	ErrorCode json.RawMessage `json:"errorCode"`
	ErrorMsg  *string         `json:"errorMsg"`
}

// SetWebhook registers url as the account's webhook:
// POST {base}/api/v1/open/webhook/save {"webhook": url}.
func (c *Client) SetWebhook(ctx context.Context, url string) error {
	body, err := json.Marshal(map[string]string{"webhook": url})
	if err != nil {
		return fmt.Errorf("encode request: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.base+"/api/v1/open/webhook/save", bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("RT-AccessCode", c.creds.AccessCode)
	req.Header.Set("RT-SecretKey", c.creds.SecretKey)
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("call provider: %w", redact.Error(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		return fmt.Errorf("provider API answered %s to %s: not followed, the request carries the secret key (set the API URL to the final address)",
			resp.Status, redact.URL(resp.Header.Get("Location")))
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return fmt.Errorf("read provider answer: %w", err)
	}
	var r reply
	if err := json.Unmarshal(raw, &r); err != nil {
		return &APIError{Status: resp.StatusCode, Code: "-", Msg: "unreadable answer: " + clip(string(raw))}
	}
	if resp.StatusCode != http.StatusOK || !r.Success {
		msg := "-"
		if r.ErrorMsg != nil {
			msg = *r.ErrorMsg
		}
		code := strings.Trim(string(r.ErrorCode), `"`)
		if code == "" || code == "null" {
			code = "-"
		}
		return &APIError{Status: resp.StatusCode, Code: code, Msg: msg}
	}
	return nil
}

func clip(s string) string {
	if len(s) > 200 {
		return s[:200] + "…"
	}
	return s
}

func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// loopback reports whether host names this machine.
func loopback(host string) bool {
	if ip, err := netip.ParseAddr(host); err == nil {
		return ip.Unmap().IsLoopback()
	}
	return strings.EqualFold(host, "localhost")
}
