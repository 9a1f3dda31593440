package provider

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/esimflow/esimflow/shared/redact"
)

// Airalo is a client of Airalo's Partner API, for the calls the CLI makes:
// opting a webhook URL in to a notification type.
type Airalo struct {
	base             string
	clientID, secret string
	http             *http.Client
}

// NewAiralo returns a client; calls are retried as New's are.
func NewAiralo(base, clientID, clientSecret string, timeout time.Duration) (*Airalo, error) {
	if err := checkBase(base, "ESIMFLOW_AIRALO_API_URL"); err != nil {
		return nil, err
	}
	if clientID == "" || clientSecret == "" {
		return nil, errors.New("Airalo client id and secret are required (--client-id/--client-secret or ESIMFLOW_AIRALO_CLIENT_ID/ESIMFLOW_AIRALO_CLIENT_SECRET)")
	}
	return &Airalo{base: strings.TrimRight(base, "/"), clientID: clientID, secret: clientSecret, http: retrying(timeout)}, nil
}

// OptIn registers webhookURL for a notification type (webhook_low_data):
// POST {base}/v2/notifications/opt-in with a token from POST {base}/v2/token.
// Airalo probes the URL with HEAD first; ingest answers it.
func (a *Airalo) OptIn(ctx context.Context, typ, webhookURL string) error {
	token, err := a.token(ctx)
	if err != nil {
		return err
	}
	body, err := json.Marshal(map[string]string{"type": typ, "webhook_url": webhookURL})
	if err != nil {
		return fmt.Errorf("encode request: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.base+"/v2/notifications/opt-in", bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	_, err = a.do(req)
	return err
}

// token gets an access token with the client credentials.
func (a *Airalo) token(ctx context.Context) (string, error) {
	form := url.Values{"client_id": {a.clientID}, "client_secret": {a.secret}, "grant_type": {"client_credentials"}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.base+"/v2/token", strings.NewReader(form.Encode()))
	if err != nil {
		return "", fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	raw, err := a.do(req)
	if err != nil {
		return "", fmt.Errorf("token: %w", err)
	}
	var r struct {
		Data struct {
			AccessToken string `json:"access_token"`
		} `json:"data"`
	}
	if err := json.Unmarshal(raw, &r); err != nil || r.Data.AccessToken == "" {
		return "", errors.New("token: no access_token in Airalo's answer")
	}
	return r.Data.AccessToken, nil
}

// do sends a request and returns a 2xx answer's body; anything else is an
// APIError with Airalo's message, never the credentials.
func (a *Airalo) do(req *http.Request) ([]byte, error) {
	resp, err := a.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("call Airalo: %w", redact.Error(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode >= 300 && resp.StatusCode < 400 {
		return nil, fmt.Errorf("Airalo answered %s to %s: not followed, the request carries credentials", resp.Status, redact.URL(resp.Header.Get("Location")))
	}
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("read Airalo's answer: %w", err)
	}
	if resp.StatusCode/100 != 2 {
		var r struct {
			Meta struct {
				Message string `json:"message"`
			} `json:"meta"`
		}
		msg := clip(string(raw))
		if json.Unmarshal(raw, &r) == nil && r.Meta.Message != "" {
			msg = r.Meta.Message
		}
		return nil, &APIError{Status: resp.StatusCode, Code: "-", Msg: msg}
	}
	return raw, nil
}
