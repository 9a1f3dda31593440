package channel

import (
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

// SMSOptions configure the SMS channel.
type SMSOptions struct {
	// BaseURL is the API's root, the part before /2010-04-01/Accounts/….
	BaseURL    string
	AccountSID string
	AuthToken  string
	// From is the sender number (E.164), or a messaging service SID ("MG…").
	From string
	// Client, when set, makes the calls (tests); nil means a client with Timeout.
	Client  *http.Client
	Timeout time.Duration // default 15s
}

// SMS sends text messages through a Twilio-compatible REST API: a form POST
// to …/Accounts/{AccountSid}/Messages.json with basic auth.
type SMS struct {
	endpoint string
	o        SMSOptions
}

// NewSMS checks the options and returns the channel.
func NewSMS(o SMSOptions) (*SMS, error) {
	u, err := url.Parse(o.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("sms: want an http(s) base URL")
	}
	if o.AccountSID == "" || o.AuthToken == "" || o.From == "" {
		return nil, errors.New("sms: account SID, auth token and sender are required")
	}
	if o.Timeout <= 0 {
		o.Timeout = 15 * time.Second
	}
	if o.Client == nil {
		o.Client = &http.Client{Timeout: o.Timeout, CheckRedirect: noRedirects}
	}
	endpoint := strings.TrimRight(o.BaseURL, "/") + "/2010-04-01/Accounts/" + url.PathEscape(o.AccountSID) + "/Messages.json"
	return &SMS{endpoint: endpoint, o: o}, nil
}

// Name is the channel's name in the notification log.
func (s *SMS) Name() string { return SMSName }

// Send posts one message to m.To.Phone. The intent id goes in the
// Idempotency-Key header, for APIs that honour it.
func (s *SMS) Send(ctx context.Context, m Message) error {
	if m.To.Phone == "" {
		return Permanent(errors.New("sms: the contact has no phone number"))
	}
	body := m.SMS
	if body == "" {
		body = m.Text
	}
	form := url.Values{"To": {m.To.Phone}, "Body": {body}}
	if strings.HasPrefix(s.o.From, "MG") {
		form.Set("MessagingServiceSid", s.o.From)
	} else {
		form.Set("From", s.o.From)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return Permanent(fmt.Errorf("sms: %w", redact.Error(err)))
	}
	req.SetBasicAuth(s.o.AccountSID, s.o.AuthToken)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Idempotency-Key", m.ID)
	resp, err := s.o.Client.Do(req)
	if err != nil {
		return fmt.Errorf("sms: %w", redact.Error(err))
	}
	defer resp.Body.Close()
	if err := checkResponse("sms", resp); err != nil {
		return err
	}
	// The API answers the created message; one without a sid was not created.
	var created struct {
		SID string `json:"sid"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&created); err != nil || created.SID == "" {
		return fmt.Errorf("sms: %s without a message sid (%v)", resp.Status, err)
	}
	return nil
}

func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
