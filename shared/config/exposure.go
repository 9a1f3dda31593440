package config

import (
	"fmt"
	"net"
	"net/netip"
)

// Loopback reports whether a listen address takes connections from this
// machine only. ":8081" and "0.0.0.0:8081" listen on every interface.
func Loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// CheckExposure refuses an internal API that would listen beyond loopback
// with no token, unless ESIMFLOW_ADMIN_INSECURE says so: it reads and
// rewrites customer contacts and re-drives or purges dead letters.
func (a Admin) CheckExposure() error {
	if Loopback(a.Addr) || a.Token != "" || a.Insecure {
		return nil
	}
	return fmt.Errorf("ESIMFLOW_ADMIN_ADDR %s listens beyond loopback and ESIMFLOW_ADMIN_TOKEN is empty: "+
		"anyone who reaches it reads customer contacts and re-drives dead letters; set a token "+
		"(or bind 127.0.0.1, or set ESIMFLOW_ADMIN_INSECURE=true if another layer guards it)", a.Addr)
}

// Exposure says in a few words who can reach the internal API, for the
// start-up log.
func (a Admin) Exposure() string {
	switch {
	case a.Token != "":
		return "token required"
	case Loopback(a.Addr):
		return "no token: this machine only"
	default:
		return "OPEN: no token beyond loopback (ESIMFLOW_ADMIN_INSECURE)"
	}
}

// Verified reports whether ingest checks who sends: path tokens, a signature
// scheme or a sender allowlist.
func (i Ingest) Verified() bool {
	return len(i.Tokens) > 0 || len(i.HMACSecrets) > 0 || len(i.SignatureSecrets) > 0 || len(i.AllowCIDRs) > 0
}

// CheckExposure refuses a webhook receiver that would listen beyond
// loopback without verifying senders, unless ESIMFLOW_INGEST_INSECURE says
// so: anyone who reaches it could post events and drive customer messages.
func (i Ingest) CheckExposure() error {
	if Loopback(i.HTTPAddr) || i.Verified() || i.Insecure {
		return nil
	}
	return fmt.Errorf("ESIMFLOW_HTTP_ADDR %s listens beyond loopback with no sender verification: "+
		"anyone who reaches it posts events that drive customer messages; set ESIMFLOW_INGEST_TOKENS, "+
		"ESIMFLOW_INGEST_HMAC_SECRETS, ESIMFLOW_INGEST_SIGNATURE_SECRETS or ESIMFLOW_INGEST_ALLOW_CIDRS "+
		"(or bind 127.0.0.1, or set ESIMFLOW_INGEST_INSECURE=true)", i.HTTPAddr)
}
