package admin_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/esimflow/esimflow/shared/admin"
)

func request(h http.Handler, method, host, path, remote string, header map[string]string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(method, path, nil)
	if host != "" {
		r.Host = host
	}
	if remote != "" {
		r.RemoteAddr = remote
	}
	for k, v := range header {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func noContent() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
}

// TestSecurityAdminTokenGuessingIsRateLimited: after a burst of wrong tokens
// a client gets 429 with Retry-After — even for the right token, so guesses
// cannot be tested — while other clients are unaffected.
func TestSecurityAdminTokenGuessingIsRateLimited(t *testing.T) {
	s := admin.New("s3cret")
	s.Handle("GET /v1/thing", noContent())
	h := s.Handler()
	attacker, other := "203.0.113.7:4000", "198.51.100.9:4000"
	wrong := map[string]string{"Authorization": "Bearer guess"}
	right := map[string]string{"Authorization": "Bearer s3cret"}
	for i := range 10 {
		if w := request(h, "GET", "", "/v1/thing", attacker, wrong); w.Code != 401 {
			t.Fatalf("attempt %d: %d, want 401", i+1, w.Code)
		}
	}
	w := request(h, "GET", "", "/v1/thing", attacker, wrong)
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") == "" {
		t.Errorf("11th wrong token: %d (Retry-After %q), want 429 with Retry-After", w.Code, w.Header().Get("Retry-After"))
	}
	if w := request(h, "GET", "", "/v1/thing", attacker, right); w.Code != http.StatusTooManyRequests {
		t.Errorf("the right token while limited: %d, want 429", w.Code)
	}
	if w := request(h, "GET", "", "/v1/thing", other, right); w.Code != 204 {
		t.Errorf("another client with the token: %d, want 204", w.Code)
	}
	// An IPv6 attacker does not get a fresh budget per address of its /64.
	for i := range 12 {
		request(h, "GET", "", "/v1/thing", fmt.Sprintf("[2001:db8:1:2::%x]:4000", i+1), wrong)
	}
	if w := request(h, "GET", "", "/v1/thing", "[2001:db8:1:2::ffff]:4000", wrong); w.Code != http.StatusTooManyRequests {
		t.Errorf("a new address in the same /64: %d, want 429", w.Code)
	}
}

// TestSecurityAdminReadyzHidesInternalAddressesWithoutToken: with a token
// configured, an open /readyz answers the status only; the checks' errors,
// which name internal hosts, need the token.
func TestSecurityAdminReadyzHidesInternalAddressesWithoutToken(t *testing.T) {
	s := admin.New("s3cret")
	s.AddCheck("store", func(context.Context) error { return errors.New("redis 10.0.0.5:6379: connection refused") })
	h := s.Handler()
	w := request(h, "GET", "", "/readyz", "", nil)
	if w.Code != 503 || strings.Contains(w.Body.String(), "10.0.0.5") || strings.Contains(w.Body.String(), "store") {
		t.Errorf("without the token: %d %s; want 503 and the status alone", w.Code, w.Body)
	}
	w = request(h, "GET", "", "/readyz", "", map[string]string{"Authorization": "Bearer s3cret"})
	if w.Code != 503 || !strings.Contains(w.Body.String(), "10.0.0.5") {
		t.Errorf("with the token: %d %s; want the details", w.Code, w.Body)
	}
}

// TestSecurityAdminRefusesForeignHostDNSRebinding: a page on attacker.example
// whose DNS then answers 127.0.0.1 makes the browser send Host:
// attacker.example; the API refuses it (421) and answers its own names.
func TestSecurityAdminRefusesForeignHostDNSRebinding(t *testing.T) {
	s := admin.NewWithOptions(admin.Options{HostCheck: true, ListenAddr: "admin.internal:8081", AllowedHosts: []string{"esimflow-processor"}})
	s.Handle("GET /v1/thing", noContent())
	s.AddCheck("store", func(context.Context) error { return errors.New("redis 10.0.0.5:6379: refused") })
	h := s.Handler()
	for _, host := range []string{"attacker.example", "attacker.example:8081", "localhost.attacker.example", "127.0.0.1.nip.io:8081"} {
		if w := request(h, "GET", host, "/v1/thing", "", nil); w.Code != http.StatusMisdirectedRequest {
			t.Errorf("Host %s: %d, want 421", host, w.Code)
		}
		if w := request(h, "GET", host, "/readyz", "", nil); strings.Contains(w.Body.String(), "10.0.0.5") {
			t.Errorf("Host %s: /readyz shows %s", host, w.Body)
		}
	}
	for _, host := range []string{"127.0.0.1:8081", "localhost:8081", "LOCALHOST", "[::1]:8081", "10.1.2.3:8081", "admin.internal:8081", "esimflow-processor:8081", "Esimflow-Processor."} {
		if w := request(h, "GET", host, "/v1/thing", "", nil); w.Code != 204 {
			t.Errorf("Host %s: %d, want 204", host, w.Code)
		}
	}
	if w := request(h, "GET", "attacker.example", "/healthz", "", nil); w.Code != 200 {
		t.Errorf("/healthz for probes: %d", w.Code)
	}
}

// TestSecurityAdminRefusesCrossSiteSimpleRequests: a cross-site form or a
// no-preflight fetch (text/plain, form-urlencoded, multipart, no type)
// cannot purge, re-drive or rewrite; a JSON body or the X-Esimflow-Request
// header — neither sendable cross-site without a preflight — can.
func TestSecurityAdminRefusesCrossSiteSimpleRequests(t *testing.T) {
	s := admin.NewWithOptions(admin.Options{RequestHeaderCheck: true})
	for _, p := range []string{"POST /v1/dlq/{seq}/redrive", "DELETE /v1/dlq/{seq}", "PUT /v1/contacts/{tx}", "GET /v1/dlq/{seq}"} {
		s.Handle(p, noContent())
	}
	h := s.Handler()
	for _, tt := range []struct {
		method, path string
		header       map[string]string
		want         int
	}{
		{"POST", "/v1/dlq/1/redrive", nil, 403},
		{"POST", "/v1/dlq/1/redrive", map[string]string{"Content-Type": "text/plain"}, 403},
		{"POST", "/v1/dlq/1/redrive", map[string]string{"Content-Type": "application/x-www-form-urlencoded"}, 403},
		{"POST", "/v1/dlq/1/redrive", map[string]string{"Content-Type": "multipart/form-data; boundary=x"}, 403},
		{"DELETE", "/v1/dlq/1", nil, 403},
		{"PUT", "/v1/contacts/tx1", map[string]string{"Content-Type": "text/plain;charset=UTF-8"}, 403},
		{"POST", "/v1/dlq/1/redrive", map[string]string{"Content-Type": "application/json"}, 204},
		{"PUT", "/v1/contacts/tx1", map[string]string{"Content-Type": "application/json; charset=utf-8"}, 204},
		{"DELETE", "/v1/dlq/1", map[string]string{admin.RequestHeader: "1"}, 204},
		{"GET", "/v1/dlq/1", nil, 204},
	} {
		if w := request(h, tt.method, "", tt.path, "", tt.header); w.Code != tt.want {
			t.Errorf("%s %s %v: %d, want %d", tt.method, tt.path, tt.header, w.Code, tt.want)
		}
	}
}

// TestSecurityPageRoutesCheckHost: a browser route (the console) skips the
// bearer header, which a browser cannot send, but not the DNS-rebinding
// guard.
func TestSecurityPageRoutesCheckHost(t *testing.T) {
	s := admin.NewWithOptions(admin.Options{Token: "tok", HostCheck: true, RequestHeaderCheck: true, ListenAddr: "127.0.0.1:8081"})
	s.HandlePage("GET /console/", noContent())
	h := s.Handler()
	if w := request(h, "GET", "attacker.example", "/console/", "", nil); w.Code != http.StatusMisdirectedRequest {
		t.Errorf("rebound host: %d, want 421", w.Code)
	}
	if w := request(h, "GET", "127.0.0.1:8081", "/console/", "", nil); w.Code != 204 {
		t.Errorf("loopback without a bearer header: %d, want 204 (the page authenticates itself)", w.Code)
	}
}
