package console

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"
)

//go:embed templates/*.html
var templateFiles embed.FS

const (
	cookieName = "esimflow_console"
	// SessionRoute is the API route the console checks a token against
	// (registered by Register, behind the token like every API route).
	SessionRoute = "/v1/console/session"
	// csp forbids every script, frame and foreign resource: the pages are
	// plain HTML and forms with one inline style sheet.
	csp = "default-src 'none'; style-src 'unsafe-inline'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)

// Options configure a Console.
type Options struct {
	// API serves the internal API's routes: the admin server's handler in
	// the all-in-one, a proxy to the services when they run apart.
	API http.Handler
	// TokenRequired says the API has a token (ESIMFLOW_ADMIN_TOKEN): the
	// console then asks for it; without one it opens and says so.
	TokenRequired bool
	Logger        *slog.Logger
	// Now is the clock (tests fix it); nil means time.Now.
	Now func() time.Time
}

// Console serves the operator pages.
type Console struct {
	api           http.Handler
	tokenRequired bool
	log           *slog.Logger
	now           func() time.Time
	pages         map[string]*template.Template
	csrfKey       []byte
	cop           *http.CrossOriginProtection
	rates         *rates
}

// New checks the options and parses the embedded templates.
func New(o Options) (*Console, error) {
	if o.API == nil {
		return nil, errors.New("console: no API handler")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	c := &Console{api: o.API, tokenRequired: o.TokenRequired, log: o.Logger, now: o.Now,
		pages: map[string]*template.Template{}, csrfKey: make([]byte, 32), cop: http.NewCrossOriginProtection(), rates: &rates{}}
	// A key per process: forms rendered before a restart are refused after
	// it (the operator reloads the page), which is the safe direction.
	if _, err := rand.Read(c.csrfKey); err != nil {
		return nil, fmt.Errorf("console csrf key: %w", err)
	}
	names, err := templateFiles.ReadDir("templates")
	if err != nil {
		return nil, fmt.Errorf("console templates: %w", err)
	}
	for _, e := range names {
		name := strings.TrimSuffix(e.Name(), ".html")
		if name == "layout" {
			continue
		}
		t, err := template.New("layout.html").Funcs(funcs).ParseFS(templateFiles, "templates/layout.html", "templates/"+e.Name())
		if err != nil {
			return nil, fmt.Errorf("console template %s: %w", name, err)
		}
		c.pages[name] = t
	}
	return c, nil
}

// session is one request's operator: the token the API calls carry.
type session struct {
	token string
	r     *http.Request
}

// view is what the layout renders around a page.
type view struct {
	Title   string
	Nav     string // the section the page belongs to
	Open    bool   // no token configured
	Session bool   // logged in (a token in the cookie)
	CSRF    string
	Refresh int // seconds, for a page that refreshes itself
	Page    any
}

// page wraps a read-only page: a session or the login page.
func (c *Console) page(h func(http.ResponseWriter, *session) (string, view, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, ok := c.authenticate(w, r)
		if !ok {
			return
		}
		name, v, err := h(w, s)
		c.finish(w, s, name, v, err)
	})
}

// action wraps a state-changing form post: same-origin, a session, and the
// session's CSRF token.
func (c *Console) action(h func(http.ResponseWriter, *session) (string, view, error)) http.Handler {
	return c.crossOrigin(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s, ok := c.authenticate(w, r)
		if !ok {
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
		if err := r.ParseForm(); err != nil {
			http.Error(w, "form: "+err.Error(), http.StatusBadRequest)
			return
		}
		if subtle.ConstantTimeCompare([]byte(r.PostForm.Get("csrf")), []byte(c.csrf(s.token))) != 1 {
			http.Error(w, "this form is stale or from another site: reload the page and try again", http.StatusForbidden)
			return
		}
		name, v, err := h(w, s)
		c.finish(w, s, name, v, err)
	}))
}

// crossOrigin refuses a non-GET request that a browser marks as coming from
// another origin (Sec-Fetch-Site, else Origin against Host).
func (c *Console) crossOrigin(h http.Handler) http.Handler {
	return c.cop.Handler(h)
}

// authenticate finds the session: with a token configured, the cookie's
// token must pass the API's own check; otherwise it redirects to the login.
func (c *Console) authenticate(w http.ResponseWriter, r *http.Request) (*session, bool) {
	s := &session{r: r}
	if !c.tokenRequired {
		return s, true
	}
	ck, err := r.Cookie(cookieName)
	if err != nil || ck.Value == "" {
		c.toLogin(w, r)
		return nil, false
	}
	s.token = ck.Value
	status, _, err := c.call(s, http.MethodGet, SessionRoute, nil, nil)
	switch {
	case err != nil:
		c.fail(w, nil, err)
		return nil, false
	case status == http.StatusTooManyRequests:
		http.Error(w, "too many failed token attempts from your address; wait a minute and log in again", http.StatusTooManyRequests)
		return nil, false
	case status != http.StatusNoContent:
		http.SetCookie(w, c.cookie(r, "", -1))
		c.toLogin(w, r)
		return nil, false
	}
	return s, true
}

func (c *Console) toLogin(w http.ResponseWriter, r *http.Request) {
	next := ""
	if r.Method == http.MethodGet {
		next = "?next=" + url.QueryEscape(r.URL.RequestURI())
	}
	http.Redirect(w, r, "/console/login"+next, http.StatusSeeOther)
}

// cookie holds the token: HttpOnly (no script reads it), SameSite=Strict (no
// other site's page sends it), Secure over TLS, for the console's paths only.
func (c *Console) cookie(r *http.Request, token string, maxAge int) *http.Cookie {
	return &http.Cookie{Name: cookieName, Value: token, Path: "/console/", MaxAge: maxAge,
		HttpOnly: true, SameSite: http.SameSiteStrictMode, Secure: r.TLS != nil}
}

// csrf is the form token of a session: bound to its token, unguessable
// without this process's key, and the same on every page of the session.
func (c *Console) csrf(token string) string {
	m := hmac.New(sha256.New, c.csrfKey)
	m.Write([]byte(token))
	return hex.EncodeToString(m.Sum(nil)[:16])
}

// finish renders the page a handler chose; an empty name means it answered.
func (c *Console) finish(w http.ResponseWriter, s *session, name string, v view, err error) {
	if err != nil {
		c.fail(w, s, err)
		return
	}
	if name == "" {
		return
	}
	v.Open, v.Session, v.CSRF = !c.tokenRequired, s.token != "", c.csrf(s.token)
	c.render(w, http.StatusOK, name, v)
}

func (c *Console) render(w http.ResponseWriter, status int, name string, v view) {
	var buf bytes.Buffer
	if err := c.pages[name].Execute(&buf, v); err != nil {
		c.log.Error("console render", "page", name, "err", err)
		http.Error(w, "render "+name+": "+err.Error(), http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", csp)
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

// fail answers an error of the API or the console itself: the operator's
// mistakes (an unknown eSIM, a bad parameter) with their 4xx, the API's
// troubles as 502, logged. s is nil before a session is known.
func (c *Console) fail(w http.ResponseWriter, s *session, err error) {
	status := http.StatusBadGateway
	var ae *apiError
	var br badRequest
	switch {
	case errors.As(err, &ae) && ae.status/100 == 4:
		status = ae.status
	case errors.As(err, &br):
		status = http.StatusBadRequest
	default:
		c.log.Warn("console", "err", err)
	}
	v := view{Title: http.StatusText(status), Open: !c.tokenRequired, Page: errorView{Status: status, Text: http.StatusText(status), Msg: err.Error()}}
	if s != nil {
		v.Session = s.token != ""
	}
	c.render(w, status, "error", v)
}

type errorView struct {
	Status    int
	Text, Msg string
}

// badRequest is a request the console itself cannot serve.
type badRequest string

func (b badRequest) Error() string { return string(b) }

// apiError is an API answer the page cannot use.
type apiError struct {
	method, path string
	status       int
	msg          string
}

func (e *apiError) Error() string {
	return fmt.Sprintf("%s %s: %d %s", e.method, e.path, e.status, e.msg)
}

// call makes an API request in-process with the session's token, from the
// operator's address (so failed tokens count against the operator). It
// returns the status; out is decoded from a 2xx answer.
func (c *Console) call(s *session, method, path string, body, out any) (int, []byte, error) {
	ctx, cancel := context.WithTimeout(s.r.Context(), 10*time.Second)
	defer cancel()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return 0, nil, fmt.Errorf("encode %s %s: %w", method, path, err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, path, rd)
	if err != nil {
		return 0, nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	req.Host, req.RemoteAddr = s.r.Host, s.r.RemoteAddr
	req.Header.Set("Content-Type", "application/json")
	if s.token != "" {
		req.Header.Set("Authorization", "Bearer "+s.token)
	}
	w := &recorder{header: http.Header{}, status: http.StatusOK}
	c.api.ServeHTTP(w, req)
	if out != nil && w.status/100 == 2 {
		if err := json.Unmarshal(w.body.Bytes(), out); err != nil {
			return w.status, nil, fmt.Errorf("decode %s %s: %w", method, path, err)
		}
	}
	return w.status, w.body.Bytes(), nil
}

// get reads path into out; any answer but 200 is an *apiError.
func (c *Console) get(s *session, path string, out any) error {
	status, body, err := c.call(s, http.MethodGet, path, nil, out)
	if err != nil {
		return err
	}
	if status != http.StatusOK {
		return &apiError{method: "GET", path: path, status: status, msg: apiMessage(body)}
	}
	return nil
}

// apiMessage is the error an API answer carries ({"error": "..."}).
func apiMessage(body []byte) string {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		return e.Error
	}
	return strings.TrimSpace(string(body))
}

func isNotFound(err error) bool {
	var ae *apiError
	return errors.As(err, &ae) && ae.status == http.StatusNotFound
}

// recorder is an in-process ResponseWriter for API calls.
type recorder struct {
	header http.Header
	status int
	wrote  bool
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header { return r.header }
func (r *recorder) WriteHeader(s int) {
	if !r.wrote {
		r.status, r.wrote = s, true
	}
}
func (r *recorder) Write(b []byte) (int, error) {
	r.wrote = true
	return r.body.Write(b)
}
