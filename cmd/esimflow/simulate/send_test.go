package simulate_test

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/esimflow/esimflow/cmd/esimflow/simulate"
)

// The sender retries a webhook answered 503 until it gets its 200, signs
// every attempt, sends the duplicates the seed chose, and tells the provider
// of each event; a webhook refused with another 4xx is given up at once and
// reported.
func TestSendRetriesAndSigns(t *testing.T) {
	var mu sync.Mutex
	seen := map[string]int{}
	unsigned := 0
	refuse := false
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		if r.Header.Get("X-Sig") != "signed" {
			unsigned++
		}
		seen[string(b)]++
		switch {
		case refuse:
			w.WriteHeader(http.StatusBadRequest)
		case seen[string(b)] == 1:
			w.Header().Set("Retry-After", "0")
			w.WriteHeader(http.StatusServiceUnavailable)
		}
	}))
	defer hook.Close()
	cfg := simulate.Config{Seed: 9, ESIMs: 10, Rate: 500, Duplicates: 0.3, Reorder: time.Second, Workers: 4, Attempts: 3,
		Backoff: time.Millisecond, Webhook: hook.URL}
	s, err := simulate.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	prov, err := simulate.NewProvider(s.Plan, simulate.ProviderOptions{AccessCode: "a", SecretKey: "s", RateLimit: 8})
	if err != nil {
		t.Fatal(err)
	}
	deps := simulate.Deps{Sign: func(r *http.Request, _ []byte) { r.Header.Set("X-Sig", "signed") }, Client: &http.Client{Timeout: 5 * time.Second}, Provider: prov}
	st, err := s.Send(context.Background(), deps)
	if err != nil {
		t.Fatal(err)
	}
	if int(st.Sent.Load()) != s.Webhooks() || st.Failed.Load() != 0 || st.Duplicates.Load() == 0 {
		t.Fatalf("sent %d of %d, %d failed, %d duplicates", st.Sent.Load(), s.Webhooks(), st.Failed.Load(), st.Duplicates.Load())
	}
	// Each body: one 503, one 200, and one more 200 when sent twice.
	if st.Retries.Load() != int64(len(seen)) || unsigned != 0 {
		t.Errorf("%d retries for %d bodies, %d unsigned attempts", st.Retries.Load(), len(seen), unsigned)
	}
	if got := st.ByStatus(); got[503] != len(seen) || got[200] != s.Webhooks()+int(st.Duplicates.Load()) {
		t.Errorf("answers %v", got)
	}

	mu.Lock()
	refuse = true
	mu.Unlock()
	s2, _ := simulate.New(cfg)
	if _, err := s2.Send(context.Background(), deps); err == nil || !strings.Contains(err.Error(), "refused with HTTP 400") {
		t.Fatalf("every webhook refused: %v", err)
	}
}

// Dropped webhooks are never sent, yet happened: the provider's query API
// knows of them. The same seed drops the same ones.
func TestDropsHappenAtTheProvider(t *testing.T) {
	var mu sync.Mutex
	var got []string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, string(b))
		mu.Unlock()
	}))
	defer hook.Close()
	cfg := simulate.Config{Seed: 11, ESIMs: 20, Rate: 1000, Drop: 0.5, Workers: 4, Attempts: 1, Backoff: time.Millisecond, Webhook: hook.URL}
	var counts []int
	for range 2 {
		got = nil
		s, _ := simulate.New(cfg)
		prov, _ := simulate.NewProvider(s.Plan, simulate.ProviderOptions{AccessCode: "a", SecretKey: "s", RateLimit: 1000})
		srv := httptest.NewServer(prov.Handler())
		st, err := s.Send(context.Background(), simulate.Deps{Client: http.DefaultClient, Provider: prov})
		if err != nil {
			t.Fatal(err)
		}
		if st.Dropped.Load() == 0 || int(st.Dropped.Load())+len(got) != s.Webhooks() {
			t.Fatalf("%d dropped, %d received, %d planned", st.Dropped.Load(), len(got), s.Webhooks())
		}
		counts = append(counts, len(got))
		// Every order happened, sent or not.
		for _, e := range s.Plan {
			_, a, _ := call(t, srv.URL, simulate.PathQuery, "a", map[string]any{"orderNo": e.OrderNo})
			if len(a.Obj.EsimList) != 1 {
				t.Fatalf("order %s unknown to the provider after the run: %+v", e.OrderNo, a)
			}
		}
		srv.Close()
	}
	if counts[0] != counts[1] {
		t.Errorf("seed 11 dropped %d, then %d", counts[0], counts[1])
	}
}
