package notifier_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/esimflow/esimflow/notifier"
	"github.com/esimflow/esimflow/notifier/channel"
	"github.com/esimflow/esimflow/shared/store"
)

// TestSecurityResolverDoesNotFollowRedirectWithToken: a shop endpoint that
// redirects (compromised, or a misconfigured proxy) does not get the
// resolver to carry its bearer token, or itself, anywhere else.
func TestSecurityResolverDoesNotFollowRedirectWithToken(t *testing.T) {
	t.Parallel()
	var elsewhere atomic.Int32
	var leaked atomic.Value
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		elsewhere.Add(1)
		leaked.Store(r.Header.Get("Authorization"))
		_, _ = w.Write([]byte(`{"email":"attacker@example.com"}`))
	}))
	t.Cleanup(other.Close)
	// Same host name as the shop, so net/http would even keep the
	// Authorization header on the way.
	shop := httptest.NewServer(http.RedirectHandler(other.URL+"/steal", http.StatusFound))
	t.Cleanup(shop.Close)
	r, err := notifier.NewResolverWith(notifier.ResolverOptions{URL: shop.URL + "/c/{iccid}", Token: "SHOPTOKEN", TTL: time.Minute, AllowPrivate: true})
	if err != nil {
		t.Fatal(err)
	}
	c, err := r.Resolve(context.Background(), notifier.ContactKeys{ICCID: "8901"})
	if err == nil {
		t.Errorf("Resolve = %+v; want an error for a redirect", c)
	}
	if n := elsewhere.Load(); n != 0 {
		t.Errorf("the redirect target got %d requests (Authorization %q)", n, leaked.Load())
	}
}

// TestSecurityResolverRefusesPrivateAddresses: by default the resolver goes
// through the SSRF guard: a template (or a DNS answer) pointing inside is
// refused, permanently, before any byte is sent.
func TestSecurityResolverRefusesPrivateAddresses(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	inside := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		calls.Add(1)
		_, _ = w.Write([]byte(`{"email":"a@example.com"}`))
	}))
	t.Cleanup(inside.Close)
	for _, base := range []string{inside.URL, strings.Replace(inside.URL, "127.0.0.1", "localhost", 1)} {
		r, err := notifier.NewResolver(base+"/c/{iccid}", "tok", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		_, err = r.Resolve(context.Background(), notifier.ContactKeys{ICCID: "8901"})
		if err == nil || !errors.Is(err, channel.ErrNotPublic) || !channel.IsPermanent(err) {
			t.Errorf("%s: Resolve err = %v; want a permanent refusal", base, err)
		}
	}
	if n := calls.Load(); n != 0 {
		t.Errorf("the private endpoint got %d requests", n)
	}
}

// TestSecurityResolverPlaceholderRejectsDotDot: event fields fill the
// template; one that would walk the path ("..", a slash, a backslash) is
// refused instead of reaching another route of the shop's API.
func TestSecurityResolverPlaceholderRejectsDotDot(t *testing.T) {
	t.Parallel()
	var paths []string
	var calls atomic.Int32
	shop := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		paths = append(paths, r.RequestURI)
		_, _ = w.Write([]byte(`{"email":"a@example.com"}`))
	}))
	t.Cleanup(shop.Close)
	r, err := notifier.NewResolverWith(notifier.ResolverOptions{URL: shop.URL + "/api/contacts/{iccid}", Token: "tok", TTL: time.Minute, AllowPrivate: true})
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"..", ".", "../admin", `..\admin`, "a/b", "89\n01"} {
		_, err := r.Resolve(context.Background(), notifier.ContactKeys{ICCID: bad})
		if !errors.Is(err, notifier.ErrUnsafeKey) || !channel.IsPermanent(err) {
			t.Errorf("iccid %q: err = %v; want a permanent ErrUnsafeKey", bad, err)
		}
	}
	if n := calls.Load(); n != 0 {
		t.Errorf("the shop got %d requests: %v", n, paths)
	}
	if _, err := notifier.NewResolver("https://{iccid}.shop.example/c", "", time.Minute); err == nil {
		t.Error("a placeholder in the host: NewResolver succeeded")
	}
}

// TestSecurityResolverErrorRedactsURLSecrets: the resolver's errors — logged,
// and written into the dead letters' error header — name the endpoint
// without the template's query or userinfo.
func TestSecurityResolverErrorRedactsURLSecrets(t *testing.T) {
	t.Parallel()
	for _, tmpl := range []string{
		"http://127.0.0.1:1/c/{iccid}?apikey=SECRETQUERY",
		"http://shop:SECRETPASS@127.0.0.1:1/c/{iccid}",
	} {
		for _, allow := range []bool{true, false} {
			r, err := notifier.NewResolverWith(notifier.ResolverOptions{URL: tmpl, TTL: time.Minute, AllowPrivate: allow, Timeout: 2 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			_, err = r.Resolve(context.Background(), notifier.ContactKeys{ICCID: "8901"})
			if err == nil || errors.Is(err, store.ErrNotFound) {
				t.Fatalf("Resolve against a closed port: %v", err)
			}
			if strings.Contains(err.Error(), "SECRET") {
				t.Errorf("error leaks the URL's secret: %v", err)
			}
		}
	}
}
