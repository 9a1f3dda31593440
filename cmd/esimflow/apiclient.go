package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

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

func (e *apiError) Error() string { return fmt.Sprintf("%d: %s", e.Status, e.Msg) }

// do sends a request and decodes a 2xx answer into out (when not nil).
func (c *apiClient) do(ctx context.Context, method, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, nil)
	if err != nil {
		return err
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s (is esimflow running? --api, ESIMFLOW_API_URL): %w", method, c.base+path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode/100 != 2 {
		var e struct{ Error string }
		if json.Unmarshal(body, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(body))
		}
		return &apiError{Status: resp.StatusCode, Msg: e.Error}
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(body, out); err != nil {
		return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
	}
	return nil
}
