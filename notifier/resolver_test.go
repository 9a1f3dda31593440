package notifier_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/esimflow/esimflow/notifier"
	"github.com/esimflow/esimflow/shared/poll"
	"github.com/esimflow/esimflow/shared/store"
)

// shop answers contact lookups: a path → status and body, recording the
// requests it got.
type shop struct {
	srv     *httptest.Server
	mu      sync.Mutex
	answers map[string]string // request URI → JSON body (absent: 404; "500": 500)
	got     []*http.Request
}

func newShop(t *testing.T, answers map[string]string) *shop {
	s := &shop{answers: answers}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.mu.Lock()
		s.got = append(s.got, r.Clone(context.Background()))
		body, ok := s.answers[r.URL.RequestURI()]
		s.mu.Unlock()
		switch {
		case !ok:
			w.WriteHeader(http.StatusNotFound)
		case body == "500":
			w.WriteHeader(http.StatusInternalServerError)
		default:
			_, _ = w.Write([]byte(body))
		}
	}))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *shop) requests() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.got)
}

func TestResolverLookups(t *testing.T) {
	t.Parallel()
	sh := newShop(t, map[string]string{
		"/c/tx%201%3F%23?iccid=8901&order=ORD+1": `{"name":"Ana","email":"ana@example.com","transactionId":"shop-own-id","extra":"ignored"}`,
		"/i/8902":                                `{"phone":"+351912345678","locale":"pt-BR"}`,
		"/i/8903":                                "500",
		"/i/8904":                                `{"email":"not an address"}`,
		"/i/8905":                                `{"email":`,
	})
	byTx, err := notifier.NewResolverWith(notifier.ResolverOptions{URL: sh.srv.URL + "/c/{transactionId}?iccid={iccid}&order={orderNo}", Token: "tok", TTL: time.Minute, AllowPrivate: true})
	if err != nil {
		t.Fatal(err)
	}
	byICCID, err := notifier.NewResolverWith(notifier.ResolverOptions{URL: sh.srv.URL + "/i/{iccid}", TTL: time.Minute, AllowPrivate: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tests := []struct {
		name     string
		r        *notifier.Resolver
		k        notifier.ContactKeys
		want     store.Contact
		notFound bool
		errHas   string
	}{
		{"escaped keys in path and query", byTx, notifier.ContactKeys{OrderNo: "ORD 1", TransactionID: "tx 1?#", ICCID: "8901"},
			store.Contact{TransactionID: "tx 1?#", Name: "Ana", Email: "ana@example.com"}, false, ""},
		{"a key the template needs is missing", byTx, notifier.ContactKeys{ICCID: "8901"}, store.Contact{}, true, ""},
		{"iccid only, no transactionId", byICCID, notifier.ContactKeys{ICCID: "8902"},
			store.Contact{TransactionID: "iccid:8902", Phone: "+351912345678", Locale: "pt-BR"}, false, ""},
		{"404", byICCID, notifier.ContactKeys{ICCID: "8999"}, store.Contact{}, true, ""},
		{"500", byICCID, notifier.ContactKeys{ICCID: "8903"}, store.Contact{}, false, "500"},
		{"invalid contact", byICCID, notifier.ContactKeys{ICCID: "8904"}, store.Contact{}, false, "bare address"},
		{"not JSON", byICCID, notifier.ContactKeys{ICCID: "8905"}, store.Contact{}, false, "unexpected EOF"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := tt.r.Resolve(ctx, tt.k)
			switch {
			case tt.notFound:
				if !errors.Is(err, store.ErrNotFound) {
					t.Errorf("= %+v, %v; want ErrNotFound", c, err)
				}
			case tt.errHas != "":
				if err == nil || errors.Is(err, store.ErrNotFound) || !strings.Contains(err.Error(), tt.errHas) {
					t.Errorf("err = %v, want one naming %q", err, tt.errHas)
				}
			case err != nil || !sameContact(c, tt.want):
				t.Errorf("= %+v, %v; want %+v", c, err, tt.want)
			}
		})
	}
	if auth := sh.got[0].Header.Get("Authorization"); auth != "Bearer tok" {
		t.Errorf("Authorization %q", auth)
	}
}

func sameContact(a, b store.Contact) bool {
	return a.TransactionID == b.TransactionID && a.Name == b.Name && a.Email == b.Email && a.Phone == b.Phone && a.Locale == b.Locale
}

func TestResolverCachesFoundContactsOnly(t *testing.T) {
	t.Parallel()
	sh := newShop(t, map[string]string{"/i/8901": `{"email":"a@example.com"}`})
	r, err := notifier.NewResolverWith(notifier.ResolverOptions{URL: sh.srv.URL + "/i/{iccid}", TTL: 200 * time.Millisecond, AllowPrivate: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for range 3 {
		if _, err := r.Resolve(ctx, notifier.ContactKeys{ICCID: "8901"}); err != nil {
			t.Fatal(err)
		}
		if _, err := r.Resolve(ctx, notifier.ContactKeys{ICCID: "8902"}); !errors.Is(err, store.ErrNotFound) {
			t.Fatal(err)
		}
	}
	if n := sh.requests(); n != 4 {
		t.Errorf("%d requests; want 1 for the cached contact and 3 for the missing one", n)
	}
	poll.Until(t, "the cached contact to expire", func() bool {
		if _, err := r.Resolve(ctx, notifier.ContactKeys{ICCID: "8901"}); err != nil {
			t.Fatal(err)
		}
		return sh.requests() > 4
	})
}

func TestNewResolverValidates(t *testing.T) {
	t.Parallel()
	for name, tmpl := range map[string]string{
		"not http":            "ftp://shop.example/{iccid}",
		"unknown placeholder": "https://shop.example/{customer}",
		"no host":             "https:///{iccid}",
	} {
		if _, err := notifier.NewResolver(tmpl, "", time.Minute); err == nil {
			t.Errorf("%s: NewResolver succeeded", name)
		}
	}
	if _, err := notifier.NewResolver("https://shop.example/{iccid}", "", 0); err == nil {
		t.Error("zero TTL: NewResolver succeeded")
	}
}
