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
type Resolver struct {
	tmpl   string
	token  string
	client *http.Client
	cache  *ttlCache
}

// NewResolver checks the template and returns the resolver.
func NewResolver(urlTemplate, token string, ttl time.Duration) (*Resolver, error) {
	probe := strings.NewReplacer("{orderNo}", "o", "{transactionId}", "t", "{iccid}", "i").Replace(urlTemplate)
	u, err := url.Parse(probe)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("contact resolver: %q: want an http(s) URL template", urlTemplate)
	}
	if strings.ContainsAny(probe, "{}") {
		return nil, fmt.Errorf("contact resolver: %q: placeholders are {orderNo}, {transactionId} and {iccid}", urlTemplate)
	}
	if ttl <= 0 {
		return nil, errors.New("contact resolver: TTL must be positive")
	}
	return &Resolver{tmpl: urlTemplate, token: token, client: &http.Client{Timeout: 10 * time.Second}, cache: newTTLCache(ttl, 10_000)}, nil
}

// Resolve returns the contact for k; store.ErrNotFound when the endpoint
// answers 404 or the template needs a key k does not have.
func (r *Resolver) Resolve(ctx context.Context, k ContactKeys) (store.Contact, error) {
	target, ok := r.expand(k)
	if !ok {
		return store.Contact{}, store.ErrNotFound
	}
	if c, ok := r.cache.get(target); ok {
		return c, nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return store.Contact{}, fmt.Errorf("contact resolver: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	if r.token != "" {
		req.Header.Set("Authorization", "Bearer "+r.token)
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return store.Contact{}, fmt.Errorf("contact resolver: %w", err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return store.Contact{}, store.ErrNotFound
	case resp.StatusCode != http.StatusOK:
		return store.Contact{}, fmt.Errorf("contact resolver: GET %s: %s", redact(target), resp.Status)
	}
	var in contactBody
	dec := json.NewDecoder(io.LimitReader(resp.Body, maxContactBody))
	if err := dec.Decode(&in); err != nil {
		return store.Contact{}, fmt.Errorf("contact resolver: GET %s: %w", redact(target), err)
	}
	// The shop's idea of the transactionId does not have to match ours; the
	// contact is keyed by ours, or by the iccid when the intent has none.
	tx := orElse(k.TransactionID, orElse(in.TransactionID, "iccid:"+k.ICCID))
	in.TransactionID = ""
	c, err := in.contact(tx)
	if err != nil {
		return store.Contact{}, fmt.Errorf("contact resolver: GET %s: %w", redact(target), err)
	}
	r.cache.put(target, c)
	return c, nil
}

// expand fills the template; false when it needs a key that is empty.
func (r *Resolver) expand(k ContactKeys) (string, bool) {
	ok := true
	path, query, _ := strings.Cut(r.tmpl, "?")
	fill := func(s string, escape func(string) string) string {
		for ph, v := range map[string]string{"{orderNo}": k.OrderNo, "{transactionId}": k.TransactionID, "{iccid}": k.ICCID} {
			if strings.Contains(s, ph) {
				if v == "" {
					ok = false
				}
				s = strings.ReplaceAll(s, ph, escape(v))
			}
		}
		return s
	}
	out := fill(path, url.PathEscape)
	if query != "" {
		out += "?" + fill(query, url.QueryEscape)
	}
	return out, ok
}

// redact drops the query, which may hold a key, from errors.
func redact(u string) string {
	p, _, _ := strings.Cut(u, "?")
	return p
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
