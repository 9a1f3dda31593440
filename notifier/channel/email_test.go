package channel_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"
	"github.com/esimflow/esimflow/notifier/channel"
	"github.com/esimflow/esimflow/notifier/channel/smtptest"
)

func message() channel.Message {
	return channel.Message{
		ID: "activation:8901234567890123456", Kind: "activation", ICCID: "8901234567890123456",
		To:      channel.Recipient{Name: "Ana Lima", Email: "ana@example.com", Phone: "+351912345678"},
		Subject: "Your eSIM is active", Text: "Hello Ana,\nyour eSIM ending in 3456 is active.",
		HTML: "<p>Hello Ana,</p><p>your eSIM ending in <b>3456</b> is active.</p>", SMS: "eSIM 3456 active.",
	}
}

func newEmail(t *testing.T, srv *smtptest.Server) *channel.Email {
	t.Helper()
	e, err := channel.NewEmail(channel.EmailOptions{URL: srv.URL(), From: "Shop Care <care@shop.example>", TLS: srv.ClientTLS(), Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestEmailDelivers(t *testing.T) {
	tests := []struct {
		name     string
		opts     smtptest.Options
		wantTLS  bool
		wantUser string
	}{
		{"smtp with STARTTLS and AUTH", smtptest.Options{Security: smtptest.STARTTLS, User: "mailer", Password: "s3cret"}, true, "mailer"},
		{"smtps implicit TLS and AUTH", smtptest.Options{Security: smtptest.Implicit, User: "mailer", Password: "s3cret"}, true, "mailer"},
		{"smtp to a server without TLS, no AUTH", smtptest.Options{Security: smtptest.Plain}, false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := smtptest.Start(t, tt.opts)
			e := newEmail(t, srv)
			m := message()
			for range 2 { // a retry sends the same Message-ID
				if err := e.Send(context.Background(), m); err != nil {
					t.Fatalf("Send: %v", err)
				}
			}
			got := srv.Mail()
			if len(got) != 2 {
				t.Fatalf("server got %d mails, want 2", len(got))
			}
			g := got[0]
			want := "<" + channel.MessageID(m.ID, "shop.example") + ">"
			if g.MessageID != want || got[1].MessageID != want {
				t.Errorf("Message-IDs %q, %q; want both %q", g.MessageID, got[1].MessageID, want)
			}
			if g.Subject != m.Subject {
				t.Errorf("Subject %q, want %q", g.Subject, m.Subject)
			}
			if g.TLS != tt.wantTLS || g.AuthUser != tt.wantUser {
				t.Errorf("TLS %v, user %q; want %v, %q", g.TLS, g.AuthUser, tt.wantTLS, tt.wantUser)
			}
			if g.From != "care@shop.example" || len(g.To) != 1 || g.To[0] != "ana@example.com" {
				t.Errorf("envelope from %q to %v", g.From, g.To)
			}
			for header, want := range map[string]string{
				"From": `"Shop Care" <care@shop.example>`, "To": `"Ana Lima" <ana@example.com>`,
				"X-Esimflow-Intent": m.ID, "Auto-Submitted": "auto-generated",
			} {
				if got := g.Header.Get(header); got != want {
					t.Errorf("%s: %q, want %q", header, got, want)
				}
			}
			if _, err := g.Header.Date(); err != nil {
				t.Errorf("Date: %v", err)
			}
			if strings.TrimSpace(g.Text) != m.Text || strings.TrimSpace(g.HTML) != m.HTML {
				t.Errorf("parts:\ntext %q\nhtml %q", g.Text, g.HTML)
			}
		})
	}
}

func TestMessageIDIsStableAndValid(t *testing.T) {
	a, b := channel.MessageID("low_data:8901:80", "shop.example"), channel.MessageID("low_data:8901:80", "shop.example")
	if a != b || a == channel.MessageID("low_data:8901:100", "shop.example") {
		t.Errorf("ids %q %q: want equal for one intent, distinct across intents", a, b)
	}
	if strings.ContainsAny(a, ":<> ") || !strings.HasSuffix(a, "@shop.example") {
		t.Errorf("id %q is not a valid msg-id body", a)
	}
}

func TestEmailFailures(t *testing.T) {
	rejectWith := func(code int) func(string) error {
		return func(string) error {
			return &smtp.SMTPError{Code: code, EnhancedCode: smtp.EnhancedCode{code / 100, 1, 1}, Message: "not today"}
		}
	}
	tests := []struct {
		name      string
		opts      smtptest.Options
		mutate    func(*channel.Message)
		permanent bool
	}{
		{"recipient unknown (550)", smtptest.Options{Reject: rejectWith(550)}, nil, true},
		{"mailbox busy (451)", smtptest.Options{Reject: rejectWith(451)}, nil, false},
		{"no email address", smtptest.Options{}, func(m *channel.Message) { m.To.Email = "" }, true},
		{"wrong password", smtptest.Options{Security: smtptest.STARTTLS, User: "mailer", Password: "other"}, nil, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := smtptest.Start(t, tt.opts)
			url := srv.URL()
			if tt.opts.User != "" {
				url = strings.Replace(url, ":other@", ":wrong@", 1)
			}
			e, err := channel.NewEmail(channel.EmailOptions{URL: url, From: "care@shop.example", TLS: srv.ClientTLS(), Timeout: 5 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			m := message()
			if tt.mutate != nil {
				tt.mutate(&m)
			}
			err = e.Send(context.Background(), m)
			if err == nil || channel.IsPermanent(err) != tt.permanent {
				t.Errorf("err = %v (permanent %v); want permanent = %v", err, channel.IsPermanent(err), tt.permanent)
			}
			if n := len(srv.Mail()); n != 0 {
				t.Errorf("server accepted %d mails", n)
			}
		})
	}
}

func TestEmailServerDown(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{})
	e := newEmail(t, srv)
	// A port nobody listens on: connection refused is transient.
	e2, err := channel.NewEmail(channel.EmailOptions{URL: "smtp://127.0.0.1:1", From: "care@shop.example", Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if err := e2.Send(context.Background(), message()); err == nil || channel.IsPermanent(err) {
		t.Errorf("refused connection: %v; want a transient error", err)
	}
	if err := e.Send(context.Background(), message()); err != nil {
		t.Errorf("the running server: %v", err)
	}
}

func TestNewEmailValidates(t *testing.T) {
	for name, o := range map[string]channel.EmailOptions{
		"no url":       {From: "a@b.example"},
		"http scheme":  {URL: "http://mail.example", From: "a@b.example"},
		"bad sender":   {URL: "smtp://mail.example", From: "not an address"},
		"bad port":     {URL: "smtp://mail.example:port", From: "a@b.example"},
		"empty sender": {URL: "smtp://mail.example"},
	} {
		if _, err := channel.NewEmail(o); err == nil {
			t.Errorf("%s: NewEmail succeeded", name)
		}
	}
}
