// Package admin is the internal API server every service shares: /healthz,
// /readyz (the services' readiness checks), /metrics (Prometheus), and the
// routes services register. The all-in-one binary gives one Server to all
// three services, so they serve on one port; a service run alone gets its own.
package admin

import (
	"context"
	"net/http"
	"net/http/pprof"
	"strconv"
	"sync"
	"time"

	"github.com/esimflow/esimflow/shared/httpjson"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Check reports whether a dependency is usable; nil means ready.
type Check func(ctx context.Context) error

// Server collects routes, metrics and readiness checks.
type Server struct {
	mux      *http.ServeMux
	registry *prometheus.Registry
	token    string
	guard    *guard
	lag      *lagCollector

	mu     sync.Mutex
	checks map[string]Check
}

// Options configure a Server.
type Options struct {
	// Token, when set, is required as "Authorization: Bearer <token>" by
	// every API route (those registered with Handle), and /readyz shows its
	// checks' details only with it. Health and metrics stay open, for probes
	// and scrapers.
	Token string
	// HostCheck turns on the DNS-rebinding guard: an API request (and the
	// details of /readyz) is answered only when its Host header is a
	// loopback name (localhost, *.localhost), an IP address, ListenAddr's
	// host or one of AllowedHosts; any other gets 421 Misdirected Request.
	HostCheck bool
	// AllowedHosts are further host names the API answers to, without port
	// ("esimflow-processor", "admin.internal.example"); "*" allows any.
	AllowedHosts []string
	// ListenAddr is the address the server listens on; its host is allowed.
	ListenAddr string
	// RequestHeaderCheck turns on the cross-site request guard: PUT, POST,
	// PATCH and DELETE need "Content-Type: application/json" or the header
	// "X-Esimflow-Request: 1" (403 otherwise). A browser cannot send either
	// cross-site without a CORS preflight, which this server never grants,
	// so a page the operator visits cannot purge or re-drive dead letters or
	// rewrite contacts through the operator's browser.
	RequestHeaderCheck bool
	// FailedAuthBurst failed token attempts from one client (an IPv4
	// address, an IPv6 /64) are allowed, then one per FailedAuthEvery; beyond
	// that the client gets 429 with Retry-After until its budget refills.
	// Defaults: 10 and 6s.
	FailedAuthBurst int
	FailedAuthEvery time.Duration
}

// RequestHeader is the header that marks a state-changing request as made
// by a program, not by a cross-site form (see Options.RequestHeaderCheck).
const RequestHeader = "X-Esimflow-Request"

// New returns a Server with only the token (see Options.Token) and the
// failed-attempt limit: no Host or request-header check. Services use
// NewWithOptions; New is for tests and in-process use.
func New(token string) *Server { return NewWithOptions(Options{Token: token}) }

// NewWithOptions returns a Server.
func NewWithOptions(o Options) *Server {
	s := &Server{mux: http.NewServeMux(), registry: prometheus.NewRegistry(), token: o.Token, guard: newGuard(o),
		checks: map[string]Check{}, lag: newLagCollector()}
	s.registry.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), s.lag)
	s.mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		httpjson.Write(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	s.mux.HandleFunc("GET /readyz", s.ready)
	s.mux.Handle("GET /metrics", promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{}))
	return s
}

// Registerer is where services register their metrics.
func (s *Server) Registerer() prometheus.Registerer { return s.registry }

// Gatherer exposes the metrics, for tests and the CLI.
func (s *Server) Gatherer() prometheus.Gatherer { return s.registry }

// Handle registers an API route (Go 1.22 pattern, e.g. "GET /v1/orders/{orderNo}").
func (s *Server) Handle(pattern string, h http.Handler) { s.mux.Handle(pattern, s.auth(h)) }

// HandlePage registers a route for a browser (the operator console): the
// Host check applies as to every API route, the bearer header does not — a
// browser cannot send it, so the handler authenticates itself (a login form
// and a cookie) and guards its own state-changing requests against
// cross-site use. Such a handler must reach state only through routes
// registered with Handle, carrying the operator's token, so the token check
// and the failed-attempt limit stay in one place.
func (s *Server) HandlePage(pattern string, h http.Handler) {
	g := s.guard
	s.mux.Handle(pattern, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !g.hostOK(r.Host) {
			http.Error(w, "host "+strconv.Quote(r.Host)+" is not one this API answers to (ESIMFLOW_ADMIN_ALLOWED_HOSTS)", http.StatusMisdirectedRequest)
			return
		}
		h.ServeHTTP(w, r)
	}))
}

// ServeProfiles adds Go's profiles under /debug/pprof/, as API routes (so
// behind the token when one is set): CPU and heap profiles of a running
// service, for finding where its time goes under real load.
func (s *Server) ServeProfiles() {
	s.Handle("GET /debug/pprof/", http.HandlerFunc(pprof.Index))
	s.Handle("GET /debug/pprof/cmdline", http.HandlerFunc(pprof.Cmdline))
	s.Handle("GET /debug/pprof/profile", http.HandlerFunc(pprof.Profile))
	s.Handle("GET /debug/pprof/symbol", http.HandlerFunc(pprof.Symbol))
	s.Handle("GET /debug/pprof/trace", http.HandlerFunc(pprof.Trace))
}

// AddCheck adds a readiness check under a name shown by /readyz.
func (s *Server) AddCheck(name string, c Check) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.checks[name] = c
}

// Handler is the server's HTTP handler.
func (s *Server) Handler() http.Handler { return s.mux }

func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	s.mu.Lock()
	checks := make(map[string]Check, len(s.checks))
	for k, v := range s.checks {
		checks[k] = v
	}
	s.mu.Unlock()
	status, out := http.StatusOK, map[string]string{}
	for name, check := range checks {
		out[name] = "ok"
		if err := check(ctx); err != nil {
			out[name], status = err.Error(), http.StatusServiceUnavailable
		}
	}
	// The checks' errors name internal addresses: only those who may use
	// the API see them; probes get the status alone.
	if (s.token != "" && !s.guard.tokenOK(r)) || !s.guard.hostOK(r.Host) {
		out = map[string]string{"status": "ok"}
		if status != http.StatusOK {
			out["status"] = "unavailable"
		}
	}
	httpjson.Write(w, status, out)
}

// auth wraps an API route: Host, then the failed-attempt limit and the
// token, then the request-header check.
func (s *Server) auth(h http.Handler) http.Handler {
	g := s.guard
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !g.hostOK(r.Host) {
			httpjson.Error(w, http.StatusMisdirectedRequest, "host "+strconv.Quote(r.Host)+" is not one this API answers to (ESIMFLOW_ADMIN_ALLOWED_HOSTS)")
			return
		}
		if s.token != "" {
			client := clientKey(r.RemoteAddr)
			if wait := g.limited(client); wait > 0 {
				w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds()+0.999)))
				httpjson.Error(w, http.StatusTooManyRequests, "too many failed token attempts; retry later")
				return
			}
			if !g.tokenOK(r) {
				g.failed(client)
				w.Header().Set("WWW-Authenticate", `Bearer realm="esimflow"`)
				httpjson.Error(w, http.StatusUnauthorized, "missing or wrong bearer token")
				return
			}
		}
		if !g.requestHeaderOK(r) {
			httpjson.Error(w, http.StatusForbidden, "a state-changing request needs Content-Type: application/json or "+RequestHeader+": 1")
			return
		}
		h.ServeHTTP(w, r)
	})
}
