package admin_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/esimflow/esimflow/shared/admin"
)

func get(t *testing.T, h http.Handler, path, auth string) *httptest.ResponseRecorder {
	t.Helper()
	r := httptest.NewRequest(http.MethodGet, path, nil)
	if auth != "" {
		r.Header.Set("Authorization", auth)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

func TestBearerToken(t *testing.T) {
	s := admin.New("s3cret")
	s.ServeProfiles()
	s.Handle("GET /v1/thing", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(204) }))
	h := s.Handler()
	tests := []struct {
		name, path, auth string
		want             int
	}{
		{"api without token", "/v1/thing", "", 401},
		{"api with a wrong token", "/v1/thing", "Bearer nope", 401},
		{"api with the token", "/v1/thing", "Bearer s3cret", 204},
		{"health stays open for probes", "/healthz", "", 200},
		{"metrics stay open for scrapers", "/metrics", "", 200},
		{"readiness stays open", "/readyz", "", 200},
		{"profiles need the token", "/debug/pprof/cmdline", "", 401},
		{"profiles with the token", "/debug/pprof/cmdline", "Bearer s3cret", 200},
		{"a named profile", "/debug/pprof/heap", "Bearer s3cret", 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := get(t, h, tt.path, tt.auth).Code; got != tt.want {
				t.Errorf("status %d, want %d", got, tt.want)
			}
		})
	}
}

func TestReadiness(t *testing.T) {
	s := admin.New("")
	down := true
	s.AddCheck("store", func(context.Context) error {
		if down {
			return errors.New("redis: connection refused")
		}
		return nil
	})
	w := get(t, s.Handler(), "/readyz", "")
	if w.Code != 503 || !strings.Contains(w.Body.String(), "connection refused") {
		t.Errorf("store down: %d %s", w.Code, w.Body)
	}
	down = false
	if w := get(t, s.Handler(), "/readyz", ""); w.Code != 200 {
		t.Errorf("store up: %d %s", w.Code, w.Body)
	}
}
