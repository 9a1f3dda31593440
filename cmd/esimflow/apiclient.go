package main

import (
	"context"
	"encoding/json"
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

// apiFlags are --api and --token, defaulting to ESIMFLOW_API_URL and
// ESIMFLOW_ADMIN_TOKEN.
type apiFlags struct {
	api, token string
	getenv     func(string) string
}

func (f *apiFlags) register(cmd *cobra.Command) {
	cmd.PersistentFlags().StringVar(&f.api, "api", "", "internal API URL (default $ESIMFLOW_API_URL, else http://127.0.0.1:8081)")
	cmd.PersistentFlags().StringVar(&f.token, "token", "", "bearer token of the internal API (default $ESIMFLOW_ADMIN_TOKEN)")
}

func (f *apiFlags) client() (*apiClient, error) {
	cfg, err := config.Load(f.getenv)
	if err != nil {
		return nil, fmt.Errorf("configuration: %w", err)
	}
	c := &apiClient{base: cfg.APIURL, token: cfg.AdminToken, http: &http.Client{Timeout: 30 * time.Second}}
	if f.api != "" {
		c.base = f.api
	}
	if f.token != "" {
		c.token = f.token
	}
	c.base = strings.TrimRight(c.base, "/")
	return c, nil
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
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, nil)
	if err != nil {
		return 0, nil, err
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
