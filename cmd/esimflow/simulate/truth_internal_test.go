package simulate

import (
	"context"
	"maps"
	"strings"
	"testing"
	"time"

	"github.com/esimflow/esimflow/shared/intent"
)

// What esimflow can know bounds what the check requires: everything when
// every webhook arrived, nothing when none did and nothing was polled, and
// after a poll only what the provider's answer showed — the current
// bundle's warnings, not those of a bundle replaced before it.
func TestKnowable(t *testing.T) {
	ctx := context.Background()
	s, err := New(Config{Seed: 7, ESIMs: 60, Rate: 100, Workers: 1, Attempts: 1, Backoff: time.Millisecond, Webhook: "http://127.0.0.1:1/",
		Rules: intent.Rules{LowDataThresholds: []int{80, 100}, ValidityLowDays: intent.DefaultValidityLowDays}})
	if err != nil {
		t.Fatal(err)
	}
	tr, err := expect(ctx, s.Plan, s.cfg.Rules)
	if err != nil {
		t.Fatal(err)
	}
	required := map[string]bool{}
	for _, m := range tr.Messages {
		if !m.Optional {
			required[m.ID] = true
		}
	}
	all, err := knowable(ctx, s.Plan, s.cfg.Rules, func(int, int) bool { return true })
	if err != nil {
		t.Fatal(err)
	}
	if got := trueKeys(all); !maps.Equal(got, required) {
		t.Errorf("every event known: %d messages required, want the truth's %d", len(got), len(required))
	}
	none, err := knowable(ctx, s.Plan, s.cfg.Rules, func(int, int) bool { return false })
	if err != nil || len(none) != 0 {
		t.Errorf("nothing known: %d messages (%v), want none", len(none), err)
	}

	// An eSIM with warnings of two bundles (a top-up; the first's are
	// optional once replaced): a poll after the top-up shows the second
	// bundle only.
	i, bundles := -1, map[string]bool{}
	for j := range s.Plan {
		clear(bundles)
		for _, m := range tr.Messages {
			if m.Kind == intent.LowData && m.ICCID == s.Plan[j].ICCID {
				bundles[bundleOf(t, m.ID)] = true
			}
		}
		if len(bundles) > 1 {
			i = j
			break
		}
	}
	if i < 0 {
		t.Fatal("no eSIM of the plan warned about two bundles; pick another seed")
	}
	p, err := NewProvider(s.Plan, ProviderOptions{AccessCode: "a", SecretKey: "s", RateLimit: 8})
	if err != nil {
		t.Fatal(err)
	}
	p.PlayAll()
	p.mu.Lock()
	_, v := p.profile(i)
	p.show(i, v.usage)
	p.mu.Unlock()
	polled, err := knowable(ctx, s.Plan, s.cfg.Rules, p.Shown)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for id := range polled {
		if strings.HasPrefix(id, "low_data:") {
			got[bundleOf(t, id)] = true
		}
	}
	if len(got) != 1 {
		t.Errorf("after one poll of the last state: warnings of bundles %v, want the current bundle's only (of %v)", got, bundles)
	}
}

func trueKeys(m map[string]bool) map[string]bool {
	out := map[string]bool{}
	for k, v := range m {
		if v {
			out[k] = true
		}
	}
	return out
}

// bundleOf is the subscription and bundle a low-data intent id names
// (intent.LowDataID: low_data:<sub>:<bundle>:<threshold>).
func bundleOf(t *testing.T, id string) string {
	t.Helper()
	rest, ok := strings.CutPrefix(id, "low_data:")
	end := strings.LastIndexByte(rest, ':')
	if !ok || end < 0 {
		t.Fatalf("not a low-data intent id: %s", id)
	}
	return rest[:end]
}
