package verify

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// ClientIP finds the sender's address: the connection's peer, or, when the
// peer is a trusted proxy, the right-most X-Forwarded-For entry that is not
// itself a trusted proxy. Entries further left are written by the client and
// can be forged, so they are never believed.
type ClientIP struct{ trusted []netip.Prefix }

// NewClientIP returns a resolver believing X-Forwarded-For from trusted.
func NewClientIP(trusted []netip.Prefix) *ClientIP { return &ClientIP{trusted: trusted} }

// Of returns the sender's address, or the zero Addr when it cannot be read.
func (c *ClientIP) Of(r *http.Request) netip.Addr {
	peer := peerAddr(r.RemoteAddr)
	if !contains(c.trusted, peer) {
		return peer
	}
	chain := strings.Join(r.Header.Values("X-Forwarded-For"), ",")
	if strings.TrimSpace(chain) == "" {
		return peer
	}
	hops := strings.Split(chain, ",")
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return netip.Addr{} // a garbled chain: trust none of it
		}
		a = a.Unmap()
		if !contains(c.trusted, a) {
			return a
		}
	}
	return peer
}

func peerAddr(remote string) netip.Addr {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}

func contains(prefixes []netip.Prefix, a netip.Addr) bool {
	if !a.IsValid() {
		return false
	}
	for _, p := range prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Allowlist accepts senders inside its prefixes.
type Allowlist struct {
	allow []netip.Prefix
	ip    *ClientIP
}

// NewAllowlist returns the check.
func NewAllowlist(allow []netip.Prefix, ip *ClientIP) *Allowlist {
	return &Allowlist{allow: allow, ip: ip}
}

// Verify answers 403 for a sender outside the list.
func (a *Allowlist) Verify(r Request) error {
	ip := r.Sender
	if !ip.IsValid() {
		ip = a.ip.Of(r.HTTP)
	}
	if !contains(a.allow, ip) {
		return fail(http.StatusForbidden, ReasonIP)
	}
	return nil
}
