package simulate_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/esimflow/esimflow/cmd/esimflow/simulate"
)

// With --provider airalo the simulator sends Airalo's low-data webhooks —
// the fields of its published sample, no type field — signed with
// airalo-signature, the hex HMAC-SHA512 of the body; it claims no truth.
func TestAiraloWebhooks(t *testing.T) {
	var mu sync.Mutex
	var bodies []map[string]any
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		m := hmac.New(sha512.New, []byte("client-secret"))
		m.Write(b)
		if r.Header.Get(simulate.AiraloSignatureHeader) != hex.EncodeToString(m.Sum(nil)) {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var v map[string]any
		if err := json.Unmarshal(b, &v); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		mu.Lock()
		bodies = append(bodies, v)
		mu.Unlock()
	}))
	defer hook.Close()
	s, err := simulate.New(simulate.Config{Seed: 4, ESIMs: 40, Rate: 1000, Workers: 4, Attempts: 2, Backoff: time.Millisecond,
		Webhook: hook.URL, Provider: simulate.Airalo})
	if err != nil {
		t.Fatal(err)
	}
	st, err := s.Send(context.Background(), simulate.Deps{Sign: simulate.AiraloSign("client-secret"), Client: hook.Client()})
	if err != nil {
		t.Fatal(err)
	}
	if len(bodies) == 0 || len(bodies) != s.Webhooks() || int(st.Sent.Load()) != len(bodies) {
		t.Fatalf("%d bodies received, %d planned, %d sent", len(bodies), s.Webhooks(), st.Sent.Load())
	}
	levels := map[string]int{}
	for _, b := range bodies {
		levels[b["level"].(string)]++
		if _, typed := b["eventType"]; typed || b["iccid"] == "" || b["package_name"] == "" {
			t.Fatalf("not Airalo's shape: %v", b)
		}
	}
	for _, l := range []string{"75%", "90%", "3days", "1days"} {
		if levels[l] == 0 {
			t.Errorf("no %s webhook in 40 lifecycles: %v", l, levels)
		}
	}
	// The published sample's fields, where the reference fixtures are beside
	// the repository.
	if raw, err := os.ReadFile(filepath.Join("..", "..", "..", "..", "shared", "fixtures", "providers", "airalo_low_data.json")); err == nil {
		var sample map[string]any
		if err := json.Unmarshal(raw, &sample); err != nil {
			t.Fatal(err)
		}
		for _, b := range bodies {
			if b["level"] == "75%" && !slices.Equal(slices.Sorted(maps.Keys(b)), slices.Sorted(maps.Keys(sample))) {
				t.Errorf("fields %v, the sample has %v", slices.Sorted(maps.Keys(b)), slices.Sorted(maps.Keys(sample)))
				break
			}
		}
	}
	if _, err := s.Expect(context.Background()); err == nil {
		t.Error("Airalo: a truth claimed")
	}
}
