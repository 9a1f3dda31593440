package admin

import (
	"crypto/sha256"
	"crypto/subtle"
	"mime"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"
)

// guard holds the API's request checks: the token, compared in constant
// time; the failed-attempt limit per client; the Host allowlist; the
// request-header check of state-changing requests.
type guard struct {
	tokenSum    [32]byte // sha256 of "Bearer <token>": equal lengths, so the comparison leaks nothing
	hostCheck   bool
	anyHost     bool
	hosts       map[string]bool
	headerCheck bool
	burst       float64
	every       time.Duration
	maxClients  int
	now         func() time.Time
	mu          sync.Mutex
	clients     map[string]*bucket
}

// bucket is one client's budget of failed attempts.
type bucket struct {
	tokens float64
	at     time.Time
}

func newGuard(o Options) *guard {
	g := &guard{
		tokenSum:    sha256.Sum256([]byte("Bearer " + o.Token)),
		hostCheck:   o.HostCheck,
		hosts:       map[string]bool{},
		headerCheck: o.RequestHeaderCheck,
		burst:       float64(o.FailedAuthBurst),
		every:       o.FailedAuthEvery,
		maxClients:  10_000,
		now:         time.Now,
		clients:     map[string]*bucket{},
	}
	if g.burst <= 0 {
		g.burst = 10
	}
	if g.every <= 0 {
		g.every = 6 * time.Second
	}
	for _, h := range o.AllowedHosts {
		h = normalHost(h)
		if h == "*" {
			g.anyHost = true
		}
		if h != "" {
			g.hosts[h] = true
		}
	}
	if host, _, err := net.SplitHostPort(o.ListenAddr); err == nil && host != "" {
		g.hosts[normalHost(host)] = true
	}
	return g
}

// tokenOK reports whether r carries the bearer token.
func (g *guard) tokenOK(r *http.Request) bool {
	got := sha256.Sum256([]byte(strings.TrimSpace(r.Header.Get("Authorization"))))
	return subtle.ConstantTimeCompare(got[:], g.tokenSum[:]) == 1
}

// hostOK reports whether the API answers to the Host header host: with a
// name that an attacker's DNS could point here (DNS rebinding), a browser
// would treat the API as the attacker's own origin. An IP address cannot be
// rebound, and a request without Host comes from no browser.
func (g *guard) hostOK(hostport string) bool {
	if !g.hostCheck || g.anyHost || hostport == "" {
		return true
	}
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = normalHost(host)
	if _, err := netip.ParseAddr(strings.Trim(host, "[]")); err == nil {
		return true
	}
	return host == "localhost" || strings.HasSuffix(host, ".localhost") || g.hosts[host]
}

func normalHost(h string) string {
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(h)), ".")
}

// requestHeaderOK reports whether r is safe, or a state-changing request a
// browser could not have sent cross-site without a preflight.
func (g *guard) requestHeaderOK(r *http.Request) bool {
	if !g.headerCheck {
		return true
	}
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return true
	}
	if r.Header.Get(RequestHeader) != "" {
		return true
	}
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && mt == "application/json"
}

// clientKey is who a failed attempt is counted against: the IPv4 address,
// or the IPv6 /64 (one host's usual allotment).
func clientKey(remoteAddr string) string {
	ap, err := netip.ParseAddrPort(remoteAddr)
	if err != nil {
		return remoteAddr
	}
	ip := ap.Addr().Unmap()
	if ip.Is6() {
		p, _ := ip.Prefix(64)
		return p.String()
	}
	return ip.String()
}

// limited returns how long client must wait, zero when it may try.
func (g *guard) limited(client string) time.Duration {
	g.mu.Lock()
	defer g.mu.Unlock()
	b, ok := g.clients[client]
	if !ok && len(g.clients) >= g.maxClients {
		b, ok = g.clients["overflow"]
	}
	if !ok {
		return 0
	}
	g.refill(b)
	if b.tokens >= 1 {
		return 0
	}
	return time.Duration((1 - b.tokens) * float64(g.every))
}

// failed spends one attempt of client's budget.
func (g *guard) failed(client string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	b, ok := g.clients[client]
	if !ok {
		if len(g.clients) >= g.maxClients {
			g.prune()
		}
		if len(g.clients) >= g.maxClients {
			// Still full of clients with failures to their name: the
			// newcomers share one budget, so a flood from many addresses
			// is limited as a whole and evicts nobody.
			client = "overflow"
		}
		if b, ok = g.clients[client]; !ok {
			b = &bucket{tokens: g.burst, at: g.now()}
			g.clients[client] = b
		}
	}
	g.refill(b)
	b.tokens = max(b.tokens-1, 0)
}

func (g *guard) refill(b *bucket) {
	now := g.now()
	b.tokens = min(g.burst, b.tokens+float64(now.Sub(b.at))/float64(g.every))
	b.at = now
}

// prune drops the clients whose budget is whole again.
func (g *guard) prune() {
	for k, b := range g.clients {
		g.refill(b)
		if b.tokens >= g.burst {
			delete(g.clients, k)
		}
	}
}
