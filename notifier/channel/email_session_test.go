package channel_test

import (
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/esimflow/esimflow/notifier/channel"
	"github.com/esimflow/esimflow/notifier/channel/smtptest"
)

// dialer opens connections to srv whatever the URL's host, and remembers them.
type dialer struct {
	srv   *smtptest.Server
	mu    sync.Mutex
	conns []net.Conn
}

func (d *dialer) dial(ctx context.Context, network, _ string) (net.Conn, error) {
	var nd net.Dialer
	c, err := nd.DialContext(ctx, network, d.srv.Addr)
	if err == nil {
		d.mu.Lock()
		d.conns = append(d.conns, c)
		d.mu.Unlock()
	}
	return c, err
}

func (d *dialer) count() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.conns)
}

func emailVia(t testing.TB, srv *smtptest.Server, d *dialer, url string, o channel.EmailOptions) *channel.Email {
	t.Helper()
	o.URL, o.From, o.TLS, o.Timeout, o.Dial = url, "care@shop.example", srv.ClientTLS(), 5*time.Second, d.dial
	e, err := channel.NewEmail(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.Close() })
	return e
}

// TestEmailAuthRule is issue 16, case 3: a server that offers AUTH PLAIN
// without TLS takes the password from a relay on loopback — whichever
// scheme names it — and from nowhere else: there the check (and every send)
// fails with ErrCleartextAuth, permanent, and no mail leaves.
func TestEmailAuthRule(t *testing.T) {
	tests := []struct {
		name      string
		opts      smtptest.Options
		url       string // %s is the server's port
		delivered bool
	}{
		{"smtp+insecure, PLAIN to 127.0.0.1", smtptest.Options{User: "mailer", Password: "s3cret"}, "smtp+insecure://mailer:s3cret@127.0.0.1:%s", true},
		{"smtp+insecure, PLAIN to localhost", smtptest.Options{User: "mailer", Password: "s3cret"}, "smtp+insecure://mailer:s3cret@localhost:%s", true},
		{"smtp, PLAIN to [::1]", smtptest.Options{User: "mailer", Password: "s3cret"}, "smtp://mailer:s3cret@[::1]:%s", true},
		{"smtp+insecure, PLAIN to a remote host", smtptest.Options{User: "mailer", Password: "s3cret"}, "smtp+insecure://mailer:s3cret@mailpit.example.net:%s", false},
		{"smtp+insecure, STARTTLS offered", smtptest.Options{Security: smtptest.STARTTLS, User: "mailer", Password: "s3cret"}, "smtp+insecure://mailer:s3cret@localhost:%s", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := smtptest.Start(t, tt.opts)
			_, port, _ := net.SplitHostPort(srv.Addr)
			e := emailVia(t, srv, &dialer{srv: srv}, strings.Replace(tt.url, "%s", port, 1), channel.EmailOptions{})
			checkErr := e.Check(context.Background())
			sendErr := e.Send(context.Background(), message())
			got := srv.Mail()
			if tt.delivered {
				if checkErr != nil || sendErr != nil || len(got) != 1 || got[0].AuthUser != "mailer" {
					t.Fatalf("Check = %v, Send = %v, %d mails; want delivered with AUTH", checkErr, sendErr, len(got))
				}
				return
			}
			for _, err := range []error{checkErr, sendErr} {
				if !errors.Is(err, channel.ErrCleartextAuth) || !channel.IsPermanent(err) {
					t.Errorf("got %v; want a permanent ErrCleartextAuth", err)
				}
			}
			if len(got) != 0 {
				t.Errorf("%d mails went out", len(got))
			}
		})
	}
}

// TestEmailCheckSaysWhy: the start-up check fails with the step that failed.
func TestEmailCheckSaysWhy(t *testing.T) {
	t.Run("wrong password", func(t *testing.T) {
		srv := smtptest.Start(t, smtptest.Options{Security: smtptest.STARTTLS, User: "mailer", Password: "s3cret"})
		e := emailVia(t, srv, &dialer{srv: srv}, "smtp://mailer:wrong@"+srv.Addr, channel.EmailOptions{})
		if err := e.Check(context.Background()); err == nil || !strings.Contains(err.Error(), "AUTH") {
			t.Errorf("Check = %v; want an AUTH failure", err)
		}
	})
	t.Run("no STARTTLS to a remote host", func(t *testing.T) {
		srv := smtptest.Start(t, smtptest.Options{})
		_, port, _ := net.SplitHostPort(srv.Addr)
		e := emailVia(t, srv, &dialer{srv: srv}, "smtp://mail.example.net:"+port, channel.EmailOptions{})
		if err := e.Check(context.Background()); err == nil || !strings.Contains(err.Error(), "STARTTLS") {
			t.Errorf("Check = %v; want a STARTTLS failure", err)
		}
	})
	t.Run("nobody listening", func(t *testing.T) {
		e, err := channel.NewEmail(channel.EmailOptions{URL: "smtp://127.0.0.1:1", From: "care@shop.example", Timeout: time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if err := e.Check(context.Background()); err == nil || !strings.Contains(err.Error(), "connect") {
			t.Errorf("Check = %v; want a connect failure", err)
		}
	})
}

// TestEmailReusesItsSession: consecutive messages share one connection (the
// check's included); a session the peer dropped, or one idle too long, is
// replaced without failing the message.
func TestEmailReusesItsSession(t *testing.T) {
	opts := smtptest.Options{Security: smtptest.STARTTLS, User: "mailer", Password: "s3cret"}
	t.Run("consecutive messages", func(t *testing.T) {
		srv := smtptest.Start(t, opts)
		d := &dialer{srv: srv}
		e := emailVia(t, srv, d, srv.URL(), channel.EmailOptions{})
		if err := e.Check(context.Background()); err != nil {
			t.Fatal(err)
		}
		for range 5 {
			if err := e.Send(context.Background(), message()); err != nil {
				t.Fatal(err)
			}
		}
		if n, mails := d.count(), len(srv.Mail()); n != 1 || mails != 5 {
			t.Errorf("%d connections for %d mails; want 1 for 5", n, mails)
		}
	})
	t.Run("dropped session", func(t *testing.T) {
		srv := smtptest.Start(t, opts)
		d := &dialer{srv: srv}
		e := emailVia(t, srv, d, srv.URL(), channel.EmailOptions{})
		if err := e.Send(context.Background(), message()); err != nil {
			t.Fatal(err)
		}
		d.mu.Lock()
		_ = d.conns[0].Close()
		d.mu.Unlock()
		if err := e.Send(context.Background(), message()); err != nil {
			t.Fatalf("Send after the connection broke: %v", err)
		}
		if n, mails := d.count(), len(srv.Mail()); n != 2 || mails != 2 {
			t.Errorf("%d connections for %d mails; want 2 for 2", n, mails)
		}
	})
	t.Run("idle timeout", func(t *testing.T) {
		srv := smtptest.Start(t, opts)
		d := &dialer{srv: srv}
		e := emailVia(t, srv, d, srv.URL(), channel.EmailOptions{IdleTimeout: time.Nanosecond})
		for range 2 {
			if err := e.Send(context.Background(), message()); err != nil {
				t.Fatal(err)
			}
		}
		if n := d.count(); n != 2 {
			t.Errorf("%d connections; want a new one after the idle timeout", n)
		}
	})
}

// BenchmarkEmailSend: one message after another over STARTTLS with AUTH,
// on a kept session against a new connection per message.
func BenchmarkEmailSend(b *testing.B) {
	for _, bc := range []struct {
		name    string
		maxIdle int
	}{{"new connection per message", -1}, {"kept session", 0}} {
		b.Run(bc.name, func(b *testing.B) {
			srv := smtptest.Start(b, smtptest.Options{Security: smtptest.STARTTLS, User: "mailer", Password: "s3cret"})
			d := &dialer{srv: srv}
			e := emailVia(b, srv, d, srv.URL(), channel.EmailOptions{MaxIdle: bc.maxIdle})
			m := message()
			b.ResetTimer()
			for range b.N {
				if err := e.Send(context.Background(), m); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(d.count())/float64(b.N), "conns/op")
		})
	}
}
