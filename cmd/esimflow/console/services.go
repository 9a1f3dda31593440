package console

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Services is the internal API of services that run apart (processor,
// notifier, ingest), as one handler for the console: a request goes to each
// base URL in turn and the first service that has the route answers (a
// service without it answers a plain-text 404, an unknown entity a JSON
// one). /readyz and /metrics are asked of every service and merged, so the
// health page shows them all. The caller's Authorization header is passed
// on: each service checks the operator's token itself.
func Services(bases []string, hc *http.Client) http.Handler {
	s := &services{hc: hc}
	for _, b := range bases {
		s.bases = append(s.bases, strings.TrimRight(b, "/"))
	}
	return s
}

type services struct {
	bases []string
	hc    *http.Client
}

type answer struct {
	base   string
	status int
	header http.Header
	body   []byte
	err    error
}

func (s *services) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body []byte
	if r.Body != nil {
		b, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		if err != nil {
			http.Error(w, "read body: "+err.Error(), http.StatusBadRequest)
			return
		}
		body = b
	}
	switch r.URL.Path {
	case "/readyz":
		s.readiness(w, r)
		return
	case "/metrics":
		s.metrics(w, r)
		return
	}
	var last answer
	for _, base := range s.bases {
		last = s.send(r, base, body)
		if last.err == nil && !routeMissing(last) {
			break
		}
	}
	if last.err != nil {
		http.Error(w, last.err.Error(), http.StatusBadGateway)
		return
	}
	maps.Copy(w.Header(), last.header)
	w.WriteHeader(last.status)
	w.Write(last.body)
}

// routeMissing: a mux's own 404 is text; the API's answers are JSON.
func routeMissing(a answer) bool {
	mt, _, _ := mime.ParseMediaType(a.header.Get("Content-Type"))
	return (a.status == http.StatusNotFound || a.status == http.StatusMethodNotAllowed) && mt != "application/json"
}

func (s *services) send(r *http.Request, base string, body []byte) answer {
	ctx, cancel := context.WithTimeout(r.Context(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, r.Method, base+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		return answer{base: base, err: fmt.Errorf("%s %s: %w", r.Method, base, err)}
	}
	for _, h := range []string{"Authorization", "Content-Type", "X-Esimflow-Request"} {
		if v := r.Header.Get(h); v != "" {
			req.Header.Set(h, v)
		}
	}
	resp, err := s.hc.Do(req)
	if err != nil {
		return answer{base: base, err: fmt.Errorf("%s %s: %w", r.Method, base+r.URL.Path, err)}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return answer{base: base, err: fmt.Errorf("%s %s: %w", r.Method, base+r.URL.Path, err)}
	}
	return answer{base: base, status: resp.StatusCode, header: resp.Header, body: b}
}

// readiness merges every service's checks, named "<service host>: <check>";
// ready only when all are.
func (s *services) readiness(w http.ResponseWriter, r *http.Request) {
	out, status := map[string]string{}, http.StatusOK
	for _, base := range s.bases {
		a := s.send(r, base, nil)
		host := base
		if u, err := url.Parse(base); err == nil {
			host = u.Host
		}
		var checks map[string]string
		switch {
		case a.err != nil:
			out[host], status = a.err.Error(), http.StatusServiceUnavailable
			continue
		case json.Unmarshal(a.body, &checks) != nil:
			out[host], status = fmt.Sprintf("answered %d without JSON", a.status), http.StatusServiceUnavailable
			continue
		}
		if a.status != http.StatusOK {
			status = http.StatusServiceUnavailable
		}
		for name, res := range checks {
			out[host+": "+name] = res
		}
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(out)
}

// metrics merges every service's metric families into one exposition.
func (s *services) metrics(w http.ResponseWriter, r *http.Request) {
	merged := map[string]*dto.MetricFamily{}
	for _, base := range s.bases {
		a := s.send(r, base, nil)
		if a.err != nil || a.status != http.StatusOK {
			continue
		}
		parser := expfmt.NewTextParser(model.UTF8Validation)
		fams, err := parser.TextToMetricFamilies(bytes.NewReader(a.body))
		if err != nil {
			continue
		}
		for name, f := range fams {
			if m, ok := merged[name]; ok {
				m.Metric = append(m.Metric, f.Metric...)
			} else {
				merged[name] = f
			}
		}
	}
	w.Header().Set("Content-Type", string(expfmt.NewFormat(expfmt.TypeTextPlain)))
	enc := expfmt.NewEncoder(w, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, name := range slices.Sorted(maps.Keys(merged)) {
		enc.Encode(merged[name])
	}
}
