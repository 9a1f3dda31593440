package console_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/esimflow/esimflow/cmd/esimflow/console"
	"github.com/esimflow/esimflow/shared/admin"
)

// TestServices: the console in front of a processor and a notifier that run
// apart finds each route on the service that has it, passes the operator's
// token, and merges readiness and metrics.
func TestServices(t *testing.T) {
	f := newFake(10)
	notifierRoute := func(p string) bool {
		return strings.Contains(p, "/v1/contacts") || strings.Contains(p, "/v1/notifications")
	}
	var urls []string
	for _, keep := range []func(string) bool{func(p string) bool { return !notifierRoute(p) }, notifierRoute} {
		a := admin.NewWithOptions(admin.Options{Token: token, HostCheck: true, RequestHeaderCheck: true})
		a.AddCheck("store", func(context.Context) error { return nil })
		f.register(a, keep)
		srv := httptest.NewServer(a.Handler())
		t.Cleanup(srv.Close)
		urls = append(urls, srv.URL)
	}
	local := admin.NewWithOptions(admin.Options{Token: token, HostCheck: true, RequestHeaderCheck: true})
	mux := http.NewServeMux()
	mux.Handle(console.SessionRoute, local.Handler())
	mux.Handle("/", console.Services(urls, &http.Client{Timeout: 5 * time.Second}))
	c, err := console.New(console.Options{API: mux, TokenRequired: true})
	if err != nil {
		t.Fatal(err)
	}
	c.Register(local)
	r := &rig{h: local.Handler(), fake: f}
	esim := r.get(t, "/console/esims/8901000000000000001", token)
	for _, want := range []string{"IN_USE", "Message activation", "dead_lettered"} {
		if !strings.Contains(esim, want) {
			t.Errorf("eSIM page lacks %q", want)
		}
	}
	if page := r.get(t, "/console/undelivered", token); !strings.Contains(page, "/console/contacts/tx-1?redrive=2") {
		t.Errorf("undelivered page:\n%s", page)
	}
	health := r.get(t, "/console/health", token)
	for _, host := range urls {
		if !strings.Contains(health, strings.TrimPrefix(host, "http://")+": store") {
			t.Errorf("health lacks the readiness of %s", host)
		}
	}
	if w := r.req("GET", "/console/dlq", nil, "wrong", nil); w.Code != http.StatusSeeOther {
		t.Errorf("a wrong token: %d", w.Code)
	}
}
