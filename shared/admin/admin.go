// Package admin is the internal API server every service shares: /healthz,
// /readyz (the services' readiness checks), /metrics (Prometheus), and the
// routes services register. The all-in-one binary gives one Server to all
// three services, so they serve on one port; a service run alone gets its own.
package admin

import (
	"context"
	"crypto/subtle"
	"net/http"
	"net/http/pprof"
	"strings"
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
	lag      *lagCollector

	mu     sync.Mutex
	checks map[string]Check
}

// New returns a Server. When token is set, every route registered with Handle
// requires "Authorization: Bearer <token>"; health and metrics stay open, for
// probes and scrapers.
func New(token string) *Server {
	s := &Server{mux: http.NewServeMux(), registry: prometheus.NewRegistry(), token: token, checks: map[string]Check{}, lag: newLagCollector()}
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
	httpjson.Write(w, status, out)
}

func (s *Server) auth(h http.Handler) http.Handler {
	if s.token == "" {
		return h
	}
	want := []byte("Bearer " + s.token)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got := []byte(strings.TrimSpace(r.Header.Get("Authorization")))
		if subtle.ConstantTimeCompare(got, want) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="esimflow"`)
			httpjson.Error(w, http.StatusUnauthorized, "missing or wrong bearer token")
			return
		}
		h.ServeHTTP(w, r)
	})
}
