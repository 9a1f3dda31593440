package config

import (
	"net/netip"
	"strings"
	"testing"
)

// TestSecurityAdminOpenOnEveryInterfaceRefused: the defaults bind loopback,
// and an internal API or webhook receiver beyond loopback without its guard
// refuses to start unless the insecure opt-out is named.
func TestSecurityAdminOpenOnEveryInterfaceRefused(t *testing.T) {
	cfg, err := Load(func(string) string { return "" })
	if err != nil {
		t.Fatal(err)
	}
	if !Loopback(cfg.Admin.Addr) || !Loopback(cfg.Ingest.HTTPAddr) {
		t.Fatalf("defaults listen on %s and %s, want loopback", cfg.Admin.Addr, cfg.Ingest.HTTPAddr)
	}
	if err := cfg.Admin.CheckExposure(); err != nil {
		t.Errorf("default admin refused: %v", err)
	}
	for _, tc := range []struct {
		name  string
		admin Admin
		ok    bool
	}{
		{"every interface, no token", Admin{Addr: ":8081"}, false},
		{"0.0.0.0, no token", Admin{Addr: "0.0.0.0:8081"}, false},
		{"ipv6 any, no token", Admin{Addr: "[::]:8081"}, false},
		{"every interface with a token", Admin{Addr: ":8081", Token: "t"}, true},
		{"every interface, insecure named", Admin{Addr: ":8081", Insecure: true}, true},
		{"localhost", Admin{Addr: "localhost:8081"}, true},
		{"ipv6 loopback", Admin{Addr: "[::1]:8081"}, true},
	} {
		err := tc.admin.CheckExposure()
		if (err == nil) != tc.ok {
			t.Errorf("%s: %v", tc.name, err)
		}
		if err != nil && !strings.Contains(err.Error(), "ESIMFLOW_ADMIN_TOKEN") {
			t.Errorf("%s: the error does not say what to set: %v", tc.name, err)
		}
	}
}

func TestSecurityIngestOpenWithoutVerificationRefused(t *testing.T) {
	for _, tc := range []struct {
		name string
		in   Ingest
		ok   bool
	}{
		{"every interface, nothing verified", Ingest{HTTPAddr: ":8080"}, false},
		{"path tokens", Ingest{HTTPAddr: ":8080", Tokens: []string{"x"}}, true},
		{"standard webhooks", Ingest{HTTPAddr: ":8080", HMACSecrets: []string{"whsec_x"}}, true},
		{"header hmac", Ingest{HTTPAddr: ":8080", SignatureSecrets: []string{"x"}}, true},
		{"allowlist", Ingest{HTTPAddr: ":8080", AllowCIDRs: []netip.Prefix{netip.MustParsePrefix("192.0.2.0/24")}}, true},
		{"insecure named", Ingest{HTTPAddr: ":8080", Insecure: true}, true},
		{"loopback", Ingest{HTTPAddr: "127.0.0.1:8080"}, true},
	} {
		if err := tc.in.CheckExposure(); (err == nil) != tc.ok {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}
