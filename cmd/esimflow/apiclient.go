package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/esimflow/esimflow/shared/admin"
	"github.com/esimflow/esimflow/shared/config"
	"github.com/spf13/cobra"
)

// apiClient talks to a running esimflow's internal API: what the operator
// commands use, so they work the same against the all-in-one and against
// separate processors.
type apiClient struct {
	base  string
	token string
	http  *http.Client
}

// defaultTimeout bounds each request to the internal API: long enough for a
// page of dead letters or a purge, short enough that a host that does not
// answer is reported while the operator waits.
const defaultTimeout = 10 * time.Second

// apiFlags are the flags of every command that talks to the internal API:
// --api, --token and --timeout. Their defaults come from the configuration
// (ESIMFLOW_API_URL, ESIMFLOW_ADMIN_TOKEN), read when the command runs, so
// --help shows where a default comes from and never the token itself.
type apiFlags struct {
	urls    []string
	token   string
	timeout time.Duration
	getenv  func(string) string
}

// newAPIFlags registers the flags on cmd and its subcommands.
func newAPIFlags(cmd *cobra.Command, getenv func(string) string) *apiFlags {
	f := &apiFlags{getenv: getenv}
	fs := cmd.PersistentFlags()
	fs.StringSliceVar(&f.urls, "api", nil, "internal API base URL; repeat or comma-separate for several services (default $ESIMFLOW_API_URL, else "+defaultAPI+")")
	fs.StringVar(&f.token, "token", "", "bearer token of the internal API (default $ESIMFLOW_ADMIN_TOKEN)")
	fs.DurationVar(&f.timeout, "timeout", defaultTimeout, "timeout of each request")
	return f
}

// clients returns a client per API, the flags over the configuration.
func (f *apiFlags) clients() ([]*apiClient, error) {
	cfg, err := config.Load(f.getenv)
	if err != nil {
		return nil, fmt.Errorf("configuration: %w", err)
	}
	urls, token := cfg.CLI.APIURLs, cfg.Admin.Token
	if len(f.urls) > 0 {
		urls = f.urls
	}
	if f.token != "" {
		token = f.token
	}
	hc := &http.Client{Timeout: f.timeout}
	var out []*apiClient
	for _, u := range urls {
		if u = strings.TrimRight(strings.TrimSpace(u), "/"); u != "" {
			out = append(out, &apiClient{base: u, token: token, http: hc})
		}
	}
	if len(out) == 0 {
		return nil, errors.New("--api: no internal API given")
	}
	return out, nil
}

// client returns the client of a command that talks to one service.
func (f *apiFlags) client() (*apiClient, error) {
	cs, err := f.clients()
	if err != nil {
		return nil, err
	}
	if len(cs) > 1 {
		return nil, fmt.Errorf("--api: this command talks to one service's API (the processor's), got %d", len(cs))
	}
	return cs[0], nil
}

// apiError is a non-2xx answer.
type apiError struct {
	Status int
	Msg    string
}

func (e *apiError) Error() string { return fmt.Sprintf("%d: %s", e.Status, cell(e.Msg)) }

// send sends a request and returns the status and body; statuses are the
// caller's to judge.
func (c *apiClient) send(ctx context.Context, method, path string) (int, []byte, error) {
	return c.sendBody(ctx, method, path, nil)
}

// sendBody is send with a JSON request body (none when nil).
func (c *apiClient) sendBody(ctx context.Context, method, path string, in []byte) (int, []byte, error) {
	var rd io.Reader
	if in != nil {
		rd = bytes.NewReader(in)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return 0, nil, err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	// Marks the request as a program's, which the API requires of
	// state-changing requests (no cross-site form can send it).
	req.Header.Set(admin.RequestHeader, "1")
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s (is esimflow running? --api, ESIMFLOW_API_URL): %w", method, c.base+path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	return resp.StatusCode, body, nil
}

// do sends a request and decodes a 2xx answer into out (when not nil); any
// other answer is an *apiError.
func (c *apiClient) do(ctx context.Context, method, path string, out any) error {
	status, body, err := c.send(ctx, method, path)
	if err != nil {
		return err
	}
	if status/100 != 2 {
		return &apiError{Status: status, Msg: errorMessage(body)}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
	}
	return nil
}

// errorMessage is the message of a JSON error body, or the body itself.
func errorMessage(body []byte) string {
	var e struct{ Error string }
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		return cell(e.Error)
	}
	return cell(strings.TrimSpace(string(body)))
}
