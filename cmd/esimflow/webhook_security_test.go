package main

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// TestSecurityWebhookSetDoesNotFollowRedirectWithSecret: a provider API (or
// whoever answers for it) that redirects does not get the CLI to send
// RT-SecretKey, or the request at all, to the redirect's target.
func TestSecurityWebhookSetDoesNotFollowRedirectWithSecret(t *testing.T) {
	for _, code := range []int{http.StatusFound, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		var stolen atomic.Int32
		thief := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Header.Get("RT-SecretKey") != "" || r.Header.Get("RT-AccessCode") != "" {
				stolen.Add(1)
			}
			_, _ = w.Write([]byte(`{"success":true}`))
		}))
		t.Cleanup(thief.Close)
		target := strings.Replace(thief.URL, "127.0.0.1", "localhost", 1) + "/collect"
		provider := httptest.NewServer(http.RedirectHandler(target, code))
		t.Cleanup(provider.Close)
		_, err := runCLI(t, nil, "webhook", "set", "--url", "https://hooks.example/webhooks/esim/tok",
			"--api-base", provider.URL, "--access-code", "ac-1", "--secret-key", "sk-1")
		if err == nil || !strings.Contains(err.Error(), "not followed") {
			t.Errorf("%d: err = %v; want the redirect reported, not followed", code, err)
		}
		if n := stolen.Load(); n != 0 {
			t.Errorf("%d: the redirect target got the credentials %d times", code, n)
		}
	}
}

// TestSecurityWebhookSetRequiresHTTPS: the provider API's URL must be
// https:// unless it is loopback; the credentials never go out in clear.
func TestSecurityWebhookSetRequiresHTTPS(t *testing.T) {
	ip := nonLoopbackIP(t)
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Skipf("listen on %s: %v", ip, err)
	}
	var calls atomic.Int32
	srv := &httptest.Server{Listener: ln, Config: &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		calls.Add(1)
		_, _ = w.Write([]byte(`{"success":true}`))
	})}}
	srv.Start()
	t.Cleanup(srv.Close)
	_, err = runCLI(t, nil, "webhook", "set", "--url", "https://hooks.example/webhooks/esim/tok",
		"--api-base", srv.URL, "--access-code", "ac-1", "--secret-key", "sk-1")
	if err == nil || !strings.Contains(err.Error(), "https://") {
		t.Errorf("plain http to %s: err = %v; want a refusal naming https://", srv.URL, err)
	}
	if n := calls.Load(); n != 0 {
		t.Errorf("the credentials went in clear %d times", n)
	}
}

// nonLoopbackIP is an address of this machine beyond loopback.
func nonLoopbackIP(t *testing.T) string {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Skip(err)
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok && !n.IP.IsLoopback() && n.IP.To4() != nil {
			return n.IP.String()
		}
	}
	t.Skip("no non-loopback IPv4 address")
	return ""
}
