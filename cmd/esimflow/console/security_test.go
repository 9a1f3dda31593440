package console_test

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// concrete turns a registered pattern into a request line.
func concrete(pattern string) (method, path string) {
	method, path, _ = strings.Cut(pattern, " ")
	path = strings.NewReplacer("{$}", "", "{iccid}", "8901000000000000001", "{seq}", "2", "{transactionId}", "tx-1").Replace(path)
	return method, path
}

// TestSecurityConsoleRoutesNeedTheCookie: with a token set, every route the
// console registers but the login refuses a request without the cookie, or
// with a wrong one, by sending it to the login page; and nothing changes.
func TestSecurityConsoleRoutesNeedTheCookie(t *testing.T) {
	r := newRig(t, token, 4)
	if len(r.pats) < 10 {
		t.Fatalf("registered routes: %v", r.pats)
	}
	for _, p := range r.pats {
		method, path := concrete(p)
		if strings.HasPrefix(path, "/console/login") || path == "/console/logout" || path == "/console" {
			continue // open by design; /console only redirects to /console/
		}
		for _, cookie := range []string{"", "wrong"} {
			form := url.Values{"seq": {"2"}, "email": {"x@evil.example"}, "source": {""}}
			w := r.req(method, path, form, cookie, nil)
			// Wrong cookies spend the client's failed-attempt budget: after
			// ten the answer is 429, a refusal too.
			limited := cookie != "" && w.Code == http.StatusTooManyRequests
			if !limited && (w.Code != http.StatusSeeOther || !strings.HasPrefix(w.Header().Get("Location"), "/console/login")) {
				t.Errorf("%s %s with cookie %q: %d %s, want a redirect to the login", method, path, cookie, w.Code, w.Header().Get("Location"))
			}
			if strings.Contains(w.Body.String(), "IN_USE") || strings.Contains(w.Body.String(), "decode: no status") {
				t.Errorf("%s %s with cookie %q shows data", method, path, cookie)
			}
		}
	}
	if len(r.fake.redriven) != 0 || len(r.fake.dlq) != 2 || len(r.fake.contacts) != 0 {
		t.Errorf("state changed without a session: redriven %v, %d dead letters, contacts %v", r.fake.redriven, len(r.fake.dlq), r.fake.contacts)
	}
	// The API routes themselves still want the bearer header, not the cookie.
	q := httptest.NewRequest("GET", "http://127.0.0.1:8081/v1/dlq", nil)
	q.AddCookie(&http.Cookie{Name: "esimflow_console", Value: token})
	w := httptest.NewRecorder()
	r.h.ServeHTTP(w, q)
	if w.Code != http.StatusUnauthorized {
		t.Errorf("the API with the console's cookie: %d, want 401", w.Code)
	}
}

// TestSecurityConsoleRefusesCrossSite: a state-changing request with the
// session cookie is refused when the browser marks it cross-site, when its
// Origin is another site, or when it lacks the session's CSRF token; the
// login form cannot be posted cross-site either (login CSRF).
func TestSecurityConsoleRefusesCrossSite(t *testing.T) {
	r := newRig(t, token, 4)
	csrf := csrfOf(t, r.get(t, "/console/dlq", token))
	other := csrfOf(t, newRig(t, token, 4).get(t, "/console/dlq", token)) // another process's key
	for _, p := range r.pats {
		method, path := concrete(p)
		if method != http.MethodPost || path == "/console/login" || path == "/console/logout" {
			continue
		}
		for name, tc := range map[string]struct {
			csrf   string
			header map[string]string
		}{
			"sec-fetch-site cross-site":   {csrf, map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"}},
			"sec-fetch-site same-site":    {csrf, map[string]string{"Sec-Fetch-Site": "same-site", "Origin": "http://other.127.0.0.1.nip.io"}},
			"foreign origin, old browser": {csrf, map[string]string{"Sec-Fetch-Site": "", "Origin": "https://evil.example"}},
			"no csrf token":               {"", nil},
			"a wrong csrf token":          {"00" + csrf[2:], nil},
			"another process's token":     {other, nil},
		} {
			form := url.Values{"seq": {"2"}, "email": {"x@evil.example"}, "source": {""}}
			if tc.csrf != "" {
				form.Set("csrf", tc.csrf)
			}
			if w := r.req(method, path, form, token, tc.header); w.Code != http.StatusForbidden {
				t.Errorf("%s %s, %s: %d, want 403", method, path, name, w.Code)
			}
		}
	}
	if len(r.fake.redriven) != 0 || len(r.fake.dlq) != 2 || len(r.fake.contacts) != 0 {
		t.Errorf("state changed cross-site: redriven %v, %d dead letters, contacts %v", r.fake.redriven, len(r.fake.dlq), r.fake.contacts)
	}
	w := r.req("POST", "/console/login", url.Values{"token": {token}}, "", map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "https://evil.example"})
	if w.Code != http.StatusForbidden || len(w.Result().Cookies()) != 0 {
		t.Errorf("cross-site login: %d", w.Code)
	}
	// GETs change nothing, so a cross-site link to one is harmless.
	if w := r.req("GET", "/console/dlq/1/delete", nil, token, map[string]string{"Sec-Fetch-Site": "cross-site"}); w.Code != 200 || len(r.fake.dlq) != 2 {
		t.Errorf("the confirmation page: %d", w.Code)
	}
}

// TestSecurityConsoleLoginLimited: wrong tokens at the login count against
// the client's failed-attempt budget like wrong bearer tokens (10, then 429).
func TestSecurityConsoleLoginLimited(t *testing.T) {
	r := newRig(t, token, 4)
	codes := map[int]int{}
	for range 12 {
		codes[r.req("POST", "/console/login", url.Values{"token": {"guess"}}, "", nil).Code]++
	}
	if codes[http.StatusUnauthorized] != 10 || codes[http.StatusTooManyRequests] != 2 {
		t.Errorf("answers to 12 wrong tokens: %v", codes)
	}
	if w := r.req("POST", "/console/login", url.Values{"token": {token}}, "", nil); w.Code != http.StatusTooManyRequests {
		t.Errorf("the right token while limited: %d, want 429", w.Code)
	}
	if w := r.req("GET", "/console/dlq", nil, "guess-by-cookie", nil); w.Code != http.StatusTooManyRequests {
		t.Errorf("a cookie guess while limited: %d, want 429", w.Code)
	}
}

// TestSecurityConsoleHeaders: pages forbid scripts, framing and caching; the
// cookie is Secure over TLS; a rebound Host is refused.
func TestSecurityConsoleHeaders(t *testing.T) {
	r := newRig(t, token, 4)
	w := r.req("GET", "/console/dlq", nil, token, nil)
	h := w.Header()
	if csp := h.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "script-src") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Errorf("CSP %q", csp)
	}
	if h.Get("Cache-Control") != "no-store" || h.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("headers %v", h)
	}
	if strings.Contains(w.Body.String(), "<script") {
		t.Error("a page carries a script")
	}
	q := httptest.NewRequest("POST", "https://127.0.0.1:8081/console/login", strings.NewReader(url.Values{"token": {token}}.Encode()))
	q.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	q.RemoteAddr, q.TLS = "127.0.0.1:1", &tls.ConnectionState{}
	rec := httptest.NewRecorder()
	r.h.ServeHTTP(rec, q)
	if ck := rec.Result().Cookies(); len(ck) != 1 || !ck[0].Secure {
		t.Errorf("cookie over TLS: %+v", ck)
	}
	q = httptest.NewRequest("GET", "http://attacker.example/console/login", nil)
	rec = httptest.NewRecorder()
	r.h.ServeHTTP(rec, q)
	if rec.Code != http.StatusMisdirectedRequest {
		t.Errorf("rebound host: %d, want 421", rec.Code)
	}
}
