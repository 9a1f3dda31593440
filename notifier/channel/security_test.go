package channel_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/esimflow/esimflow/notifier/channel"
)

// TestSecurityWebhookGuardRefusesIPv6TransitionPrefixes: IPv6 addresses that
// carry an IPv4 address (IPv4-compatible, 6to4, Teredo, NAT64) or that are
// private by another name (site-local) reach whatever they carry: they are
// refused when what they carry is not public, and the public ones pass.
func TestSecurityWebhookGuardRefusesIPv6TransitionPrefixes(t *testing.T) {
	for _, tt := range []struct {
		host   string
		refuse bool
	}{
		{"::127.0.0.1", true},                // IPv4-compatible loopback
		{"::10.0.0.1", true},                 // IPv4-compatible private
		{"::8.8.8.8", true},                  // IPv4-compatible: deprecated, refused outright
		{"::ffff:169.254.169.254", true},     // IPv4-mapped metadata service
		{"2002:7f00:1::1", true},             // 6to4 of 127.0.0.1
		{"2002:a9fe:a9fe::1", true},          // 6to4 of 169.254.169.254
		{"2002:808:808::1", false},           // 6to4 of 8.8.8.8
		{"2001:0:7f00:1::1", true},           // Teredo, server 127.0.0.1
		{"2001:0:808:808::f5ff:fffe", true},  // Teredo, client 10.0.0.1 (inverted)
		{"2001:0:808:808::f7f7:f7f7", false}, // Teredo, server and client 8.8.8.8
		{"fec0::1", true},                    // site-local
		{"64:ff9b::a00:1", true},             // NAT64 of 10.0.0.1
		{"64:ff9b::7f00:1", true},            // NAT64 of 127.0.0.1
		{"64:ff9b::808:808", false},          // NAT64 of 8.8.8.8
		{"64:ff9b:1::1", true},               // local-use NAT64
		{"2606:4700::1111", false},           // ordinary public IPv6
	} {
		u := "https://[" + tt.host + "]/hook"
		_, err := channel.NewWebhook(channel.WebhookOptions{URL: u, Secret: secret})
		refused := err != nil && strings.Contains(err.Error(), "not a public address")
		if refused != tt.refuse {
			t.Errorf("%s: NewWebhook = %v; want refused = %v", tt.host, err, tt.refuse)
		}
		if _, err := channel.NewWebhook(channel.WebhookOptions{URL: u, Secret: secret, AllowPrivate: true}); err != nil {
			t.Errorf("%s with AllowPrivate: %v", tt.host, err)
		}
	}
}

// TestSecurityWebhookErrorRedactsURLSecrets: a failed delivery's error — what
// the logs and the dead letter's error header get — carries neither the
// URL's query nor its userinfo.
func TestSecurityWebhookErrorRedactsURLSecrets(t *testing.T) {
	for _, u := range []string{
		"http://127.0.0.1:1/hook?token=SECRETQUERY",
		"http://hookuser:SECRETPASS@127.0.0.1:1/hook",
	} {
		w, err := channel.NewWebhook(channel.WebhookOptions{URL: u, Secret: secret, AllowPrivate: true, Timeout: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		err = w.Send(context.Background(), message())
		if err == nil {
			t.Fatalf("%s: Send succeeded against a closed port", u)
		}
		if strings.Contains(err.Error(), "SECRET") {
			t.Errorf("error leaks the URL's secret: %v", err)
		}
		if !strings.Contains(err.Error(), "127.0.0.1:1/hook") {
			t.Errorf("error lost the endpoint: %v", err)
		}
	}
}

// TestSecuritySMSErrorRedactsURLSecrets: the same for the SMS API's URL.
func TestSecuritySMSErrorRedactsURLSecrets(t *testing.T) {
	s, err := channel.NewSMS(channel.SMSOptions{BaseURL: "http://apiuser:SECRETPASS@127.0.0.1:1/?key=SECRETQUERY",
		AccountSID: "AC1", AuthToken: "tok", From: "+15550001111", Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Send(context.Background(), message())
	if err == nil || strings.Contains(err.Error(), "SECRET") {
		t.Errorf("Send = %v; want an error without the URL's secrets", err)
	}
}

// TestSecurityConsoleICCIDNewlineCannotForgeLines: an ICCID (or id, kind,
// subject, text) with a newline and terminal escapes prints as one line with
// the escapes shown, not obeyed.
func TestSecurityConsoleICCIDNewlineCannotForgeLines(t *testing.T) {
	var out strings.Builder
	c := channel.NewConsole(&out)
	m := message()
	m.ICCID = "8901\n2026-01-01T00:00:00Z NOTIFY id=forged kind=activation iccid=8999 \x1b]0;pwned\x07\x1b[2J\u009b31m"
	m.ID = "activation:8901\r\n"
	m.Kind = "activation\u202e"
	m.Subject = "hi\n\x1b[31m"
	m.Text = "a\x1b[2Jb"
	if err := c.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	if n := strings.Count(got, "\n"); n != 1 || !strings.HasSuffix(got, "\n") {
		t.Errorf("%d lines: %q", n, got)
	}
	if strings.ContainsAny(strings.TrimSuffix(got, "\n"), "\x1b\x07\r\n\u009b\u202e") {
		t.Errorf("raw control characters in %q", got)
	}
	if !strings.Contains(got, `iccid=8901\n2026`) {
		t.Errorf("the ICCID is not shown escaped: %q", got)
	}
}
