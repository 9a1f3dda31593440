package notifier

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/esimflow/esimflow/notifier/channel"
	"github.com/esimflow/esimflow/shared/redact"
	"github.com/esimflow/esimflow/shared/store"
)

// ContactKeys are what a contact can be looked up by.
type ContactKeys struct {
	OrderNo, TransactionID, ICCID string
}

// Resolver looks contacts up over HTTP for resellers whose customer data
// lives elsewhere: GET on a URL template with {orderNo}, {transactionId} and
// {iccid}, answered with the contact's JSON (the API's PUT body) or 404.
// Contacts found are cached for a TTL; "none" is not, so a contact the shop
// registers late is found on the next attempt.
//
// The keys come from provider events, so they are not trusted: a key that
// would change the URL's path (".", "..", a slash or backslash, a control
// character) is refused, and each is escaped for where it lands. Requests go
// through the webhook channel's SSRF guard (no private address unless
// allowed, no proxy) and follow no redirect, so the bearer token reaches
// only the configured host. Errors carry the URL without its query or
// userinfo.
type Resolver struct {
	tmpl   string
	token  string
	client *http.Client
	cache  *ttlCache
}

// ResolverOptions configure a Resolver.
type ResolverOptions struct {
	// URL is the template, e.g. https://shop.example/contacts/{transactionId}.
	URL string
	// Token, when set, is sent as "Authorization: Bearer <token>".
	Token string
	// TTL is how long a found contact is cached; it must be positive.
	TTL time.Duration
	// AllowPrivate lets the resolver reach loopback, private, link-local and
	// other non-public addresses, which are refused by default.
	AllowPrivate bool
	// Timeout bounds each lookup (default 10s).
	Timeout time.Duration
}

// NewResolver checks the template and returns the resolver, with private
// addresses refused (see NewResolverWith).
func NewResolver(urlTemplate, token string, ttl time.Duration) (*Resolver, error) {
	return NewResolverWith(ResolverOptions{URL: urlTemplate, Token: token, TTL: ttl})
}

// NewResolverWith checks the options and returns the resolver.
func NewResolverWith(o ResolverOptions) (*Resolver, error) {
	urlTemplate := o.URL
	probe := strings.NewReplacer("{orderNo}", "o", "{transactionId}", "t", "{iccid}", "i").Replace(urlTemplate)
	u, err := url.Parse(probe)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("contact resolver: %q: want an http(s) URL template", redact.URL(urlTemplate))
	}
	if strings.ContainsAny(probe, "{}") {
		return nil, fmt.Errorf("contact resolver: %q: placeholders are {orderNo}, {transactionId} and {iccid}", redact.URL(urlTemplate))
	}
	if _, rest, _ := strings.Cut(urlTemplate, "://"); strings.Contains(rest[:strings.IndexAny(rest+"/", "/?#")], "{") {
		return nil, fmt.Errorf("contact resolver: %q: placeholders belong in the path or the query", redact.URL(urlTemplate))
	}
	if o.TTL <= 0 {
		return nil, errors.New("contact resolver: TTL must be positive")
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	return &Resolver{tmpl: urlTemplate, token: o.Token, client: channel.GuardedClient(o.Timeout, o.AllowPrivate), cache: newTTLCache(o.TTL, 10_000)}, nil
}

// Resolve returns the contact for k; store.ErrNotFound when the endpoint
// answers 404 or the template needs a key k does not have.
func (r *Resolver) Resolve(ctx context.Context, k ContactKeys) (store.Contact, error) {
	target, ok, err := r.expand(k)
	if err != nil {
		return store.Contact{}, channel.Permanent(err)
	}
	if !ok {
		return store.Contact{}, store.ErrNotFound
	}
	if c, ok := r.cache.get(target); ok {
		return c, nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return store.Contact{}, channel.Permanent(fmt.Errorf("contact resolver: %w", redact.Error(err)))
	}
	req.Header.Set("Accept", "application/json")
	if r.token != "" {
		req.Header.Set("Authorization", "Bearer "+r.token)
	}
	resp, err := r.client.Do(req)
	if err != nil {
		err = fmt.Errorf("contact resolver: %w", redact.Error(err))
		if errors.Is(err, channel.ErrNotPublic) {
			return store.Contact{}, channel.Permanent(fmt.Errorf("%w (set ESIMFLOW_CONTACT_RESOLVER_ALLOW_PRIVATE to allow it)", err))
		}
		return store.Contact{}, err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return store.Contact{}, store.ErrNotFound
	case resp.StatusCode != http.StatusOK:
		return store.Contact{}, fmt.Errorf("contact resolver: GET %s: %s", redact.URL(target), resp.Status)
	}
	var in contactBody
	dec := json.NewDecoder(io.LimitReader(resp.Body, maxContactBody))
	if err := dec.Decode(&in); err != nil {
		return store.Contact{}, fmt.Errorf("contact resolver: GET %s: %w", redact.URL(target), err)
	}
	// The shop's idea of the transactionId does not have to match ours; the
	// contact is keyed by ours, or by the iccid when the intent has none.
	tx := orElse(k.TransactionID, orElse(in.TransactionID, "iccid:"+k.ICCID))
	in.TransactionID = ""
	c, err := in.contact(tx)
	if err != nil {
		return store.Contact{}, fmt.Errorf("contact resolver: GET %s: %w", redact.URL(target), err)
	}
	r.cache.put(target, c)
	return c, nil
}

// ErrUnsafeKey is a contact key that cannot be placed in the resolver's URL.
var ErrUnsafeKey = errors.New("not usable in the contact resolver's URL")

// expand fills the template; false when it needs a key that is empty, an
// error when a key in the path would change it (".", "..", a slash or
// backslash, a control character). Keys in the query are query-escaped.
func (r *Resolver) expand(k ContactKeys) (string, bool, error) {
	ok := true
	var bad error
	path, query, _ := strings.Cut(r.tmpl, "?")
	fill := func(s string, escape func(string) string, inPath bool) string {
		for _, ph := range []struct{ name, v string }{{"orderNo", k.OrderNo}, {"transactionId", k.TransactionID}, {"iccid", k.ICCID}} {
			key := "{" + ph.name + "}"
			if !strings.Contains(s, key) {
				continue
			}
			switch v := ph.v; {
			case v == "":
				ok = false
			case inPath && (v == "." || v == ".." || strings.ContainsAny(v, "/\\") || strings.ContainsFunc(v, unicode.IsControl)):
				bad = fmt.Errorf("contact resolver: %s %q: %w", ph.name, v, ErrUnsafeKey)
			}
			s = strings.ReplaceAll(s, key, escape(ph.v))
		}
		return s
	}
	out := fill(path, url.PathEscape, true)
	if query != "" {
		out += "?" + fill(query, url.QueryEscape, false)
	}
	return out, ok, bad
}

// ttlCache is a bounded map whose entries expire. (The expirable LRU of
// hashicorp/golang-lru starts a goroutine per cache that never stops.)
type ttlCache struct {
	ttl  time.Duration
	size int
	mu   sync.Mutex
	m    map[string]cached
}

type cached struct {
	c       store.Contact
	expires time.Time
}

func newTTLCache(ttl time.Duration, size int) *ttlCache {
	return &ttlCache{ttl: ttl, size: size, m: map[string]cached{}}
}

func (t *ttlCache) get(k string) (store.Contact, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.m[k]
	if !ok || time.Now().After(e.expires) {
		delete(t.m, k)
		return store.Contact{}, false
	}
	return e.c, true
}

func (t *ttlCache) put(k string, c store.Contact) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.m) >= t.size {
		// Full: drop the expired, and if that is not enough, everything.
		// A miss costs one GET; an unbounded map costs the process.
		now := time.Now()
		for key, e := range t.m {
			if now.After(e.expires) {
				delete(t.m, key)
			}
		}
		if len(t.m) >= t.size {
			clear(t.m)
		}
	}
	t.m[k] = cached{c: c, expires: time.Now().Add(t.ttl)}
}
