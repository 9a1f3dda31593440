package channel_test

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/esimflow/esimflow/notifier/channel"
	"github.com/esimflow/esimflow/notifier/channel/smtptest"
)

// TestSecuritySMTPRefusesCleartextWhenSTARTTLSIsStripped: a server that does
// not offer STARTTLS — or an attacker on the path who strips the offer — gets
// neither the customer's mail nor the password in clear from an smtp:// URL
// naming a host beyond loopback; smtp+insecure:// is the documented way to
// allow clear text, and a loopback relay may take plain AUTH.
func TestSecuritySMTPRefusesCleartextWhenSTARTTLSIsStripped(t *testing.T) {
	tests := []struct {
		name      string
		opts      smtptest.Options
		url       string // %s is the server's port; the dial goes to the test server whatever the host
		delivered bool
	}{
		{"no STARTTLS, no credentials, remote host", smtptest.Options{}, "smtp://mail.example.net:%s", false},
		{"no STARTTLS, credentials, remote host", smtptest.Options{User: "mailer", Password: "s3cret"}, "smtp://mailer:s3cret@mail.example.net:%s", false},
		{"smtp+insecure allows clear text", smtptest.Options{}, "smtp+insecure://mail.example.net:%s", true},
		{"loopback relay without TLS", smtptest.Options{}, "smtp://127.0.0.1:%s", true},
		{"plain AUTH to loopback without TLS", smtptest.Options{User: "mailer", Password: "s3cret"}, "smtp://mailer:s3cret@localhost:%s", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := smtptest.Start(t, tt.opts)
			_, port, _ := net.SplitHostPort(srv.Addr)
			var d net.Dialer
			e, err := channel.NewEmail(channel.EmailOptions{
				URL: strings.Replace(tt.url, "%s", port, 1), From: "care@shop.example", Timeout: 5 * time.Second,
				Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
					return d.DialContext(ctx, network, srv.Addr)
				},
			})
			if err != nil {
				t.Fatal(err)
			}
			err = e.Send(context.Background(), message())
			got := srv.Mail()
			switch {
			case tt.delivered && (err != nil || len(got) != 1):
				t.Errorf("Send = %v, %d mails; want delivered", err, len(got))
			case !tt.delivered && (err == nil || len(got) != 0):
				t.Errorf("Send = %v, %d mails; want a refusal and no mail", err, len(got))
			case !tt.delivered && !strings.Contains(err.Error(), "STARTTLS"):
				t.Errorf("Send = %v; want an error naming STARTTLS", err)
			}
		})
	}
}
