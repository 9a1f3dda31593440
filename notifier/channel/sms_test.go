package channel_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/esimflow/esimflow/notifier/channel"
)

// smsAPI is a Twilio-compatible endpoint that checks every request and
// answers what the test asks for.
type smsAPI struct {
	t       *testing.T
	status  int
	header  http.Header
	body    string
	mu      sync.Mutex
	request []http.Header
	forms   []map[string]string
}

func (a *smsAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/api/2010-04-01/Accounts/AC123/Messages.json" {
		a.t.Errorf("request %s %s", r.Method, r.URL.Path)
	}
	if user, pass, ok := r.BasicAuth(); !ok || user != "AC123" || pass != "tok" {
		a.t.Errorf("basic auth %q %q %v", user, pass, ok)
	}
	if err := r.ParseForm(); err != nil {
		a.t.Error(err)
	}
	form := map[string]string{}
	for k := range r.PostForm {
		form[k] = r.PostForm.Get(k)
	}
	a.mu.Lock()
	a.request, a.forms = append(a.request, r.Header.Clone()), append(a.forms, form)
	a.mu.Unlock()
	for k, v := range a.header {
		w.Header()[k] = v
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(a.status)
	_, _ = w.Write([]byte(a.body))
}

func newSMS(t *testing.T, api *smsAPI, from string) *channel.SMS {
	t.Helper()
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	s, err := channel.NewSMS(channel.SMSOptions{BaseURL: srv.URL + "/api/", AccountSID: "AC123", AuthToken: "tok", From: from, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSMSSends(t *testing.T) {
	for _, tt := range []struct {
		name, from, fromField string
	}{
		{"from a number", "+15550001111", "From"},
		{"from a messaging service", "MG0123456789abcdef", "MessagingServiceSid"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			api := &smsAPI{t: t, status: http.StatusCreated, body: `{"sid":"SM1","status":"queued"}`}
			if err := newSMS(t, api, tt.from).Send(context.Background(), message()); err != nil {
				t.Fatalf("Send: %v", err)
			}
			if len(api.forms) != 1 {
				t.Fatalf("%d requests", len(api.forms))
			}
			want := map[string]string{"To": "+351912345678", "Body": "eSIM 3456 active.", tt.fromField: tt.from}
			if len(api.forms[0]) != len(want) {
				t.Errorf("form %v, want %v", api.forms[0], want)
			}
			for k, v := range want {
				if api.forms[0][k] != v {
					t.Errorf("form %s = %q, want %q", k, api.forms[0][k], v)
				}
			}
			if got := api.request[0].Get("Idempotency-Key"); got != message().ID {
				t.Errorf("Idempotency-Key %q, want the intent id", got)
			}
		})
	}
}

func TestSMSBodyFallsBackToText(t *testing.T) {
	api := &smsAPI{t: t, status: http.StatusCreated, body: `{"sid":"SM1"}`}
	m := message()
	m.SMS = ""
	if err := newSMS(t, api, "+15550001111").Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	if api.forms[0]["Body"] != m.Text {
		t.Errorf("Body %q, want the text", api.forms[0]["Body"])
	}
}

func TestSMSFailures(t *testing.T) {
	tests := []struct {
		name       string
		status     int
		header     http.Header
		body       string
		noPhone    bool
		permanent  bool
		retryAfter time.Duration
	}{
		{"rate limited, Retry-After seconds", 429, http.Header{"Retry-After": {"7"}}, `{"code":20429,"message":"Too Many Requests"}`, false, false, 7 * time.Second},
		{"server error", 500, nil, `{}`, false, false, 0},
		{"unavailable with a date", 503, http.Header{"Retry-After": {time.Now().Add(time.Hour + time.Minute).UTC().Format(http.TimeFormat)}}, ``, false, false, time.Hour},
		{"invalid number", 400, nil, `{"code":21211,"message":"The 'To' number is not a valid phone number."}`, false, true, 0},
		{"bad credentials", 401, nil, `{"code":20003}`, false, true, 0},
		{"created without a sid", 201, nil, `{}`, false, false, 0},
		{"no phone number", 201, nil, `{"sid":"SM1"}`, true, true, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			api := &smsAPI{t: t, status: tt.status, header: tt.header, body: tt.body}
			m := message()
			if tt.noPhone {
				m.To.Phone = ""
			}
			err := newSMS(t, api, "+15550001111").Send(context.Background(), m)
			if err == nil || channel.IsPermanent(err) != tt.permanent {
				t.Fatalf("err = %v (permanent %v); want permanent = %v", err, channel.IsPermanent(err), tt.permanent)
			}
			if got := channel.RetryAfter(err); got != tt.retryAfter {
				t.Errorf("RetryAfter = %v, want %v", got, tt.retryAfter)
			}
		})
	}
}

func TestNewSMSValidates(t *testing.T) {
	for name, o := range map[string]channel.SMSOptions{
		"no url":   {AccountSID: "AC", AuthToken: "t", From: "+1555"},
		"ftp url":  {BaseURL: "ftp://x", AccountSID: "AC", AuthToken: "t", From: "+1555"},
		"no sid":   {BaseURL: "https://sms.example", AuthToken: "t", From: "+1555"},
		"no token": {BaseURL: "https://sms.example", AccountSID: "AC", From: "+1555"},
		"no from":  {BaseURL: "https://sms.example", AccountSID: "AC", AuthToken: "t"},
	} {
		if _, err := channel.NewSMS(o); err == nil {
			t.Errorf("%s: NewSMS succeeded", name)
		}
	}
}
