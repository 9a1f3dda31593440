// Package storetest is the conformance suite every store.Store implementation
// must pass: redisstore and kvstore run it against real servers. Differences
// between backends are not allowed; a case that cannot hold for one of them
// belongs in that backend's own tests.
package storetest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/esimflow/esimflow/shared/store"
)

// Options are what the suite asks of a fresh store.
type Options struct {
	SeenTTL time.Duration
}

// Factory returns a fresh, isolated store (its own namespace) for one test.
type Factory func(t *testing.T, opts Options) store.Store

// Run runs the whole suite.
func Run(t *testing.T, newStore Factory) {
	cases := []struct {
		name string
		fn   func(*testing.T, Factory)
	}{
		{"NotFound", testNotFound},
		{"UpdateCreatesAndReads", testUpdateCreates},
		{"UnchangedIsNotWritten", testUnchangedNotWritten},
		{"UpdateErrorWritesNothing", testUpdateError},
		{"ConcurrentUpdatesAllSurvive", testConcurrentUpdates},
		{"OddIDs", testOddIDs},
		{"SeenSet", testSeen},
		{"SeenExpires", testSeenExpires},
		{"ClaimLifecycle", testClaimLifecycle},
		{"ClaimReleaseAndTakeover", testClaimTakeover},
		{"ConcurrentClaimsOneWinner", testConcurrentClaims},
		{"NotificationLog", testNotificationLog},
		{"NotificationLogBounded", testNotificationLogBounded},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.fn(t, newStore)
		})
	}
}

var defaults = Options{SeenTTL: time.Hour}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func testNotFound(t *testing.T, f Factory) {
	s := f(t, defaults)
	if _, err := s.Order(ctx(t), "none"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Order: err = %v, want ErrNotFound", err)
	}
	if _, err := s.Profile(ctx(t), "none"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Profile: err = %v, want ErrNotFound", err)
	}
	if st, err := s.ClaimState(ctx(t), "none"); err != nil || st != store.ClaimNone {
		t.Errorf("ClaimState = %q, %v", st, err)
	}
	if err := s.Ping(ctx(t)); err != nil {
		t.Errorf("Ping: %v", err)
	}
}

func testUpdateCreates(t *testing.T, f Factory) {
	s := f(t, defaults)
	at := time.Date(2024, 1, 15, 14, 0, 0, 0, time.UTC)
	p, err := s.UpdateProfile(ctx(t), "8901", func(p *store.Profile) (bool, error) {
		if p.ICCID != "8901" {
			t.Errorf("fn got a profile without its id: %+v", p)
		}
		p.Status, p.UsagePercent, p.UpdatedAt = "ACTIVATED", 80.5, at
		p.History = []store.Transition{{Status: "ACTIVATED", At: at}}
		return true, nil
	})
	if err != nil || p.Status != "ACTIVATED" {
		t.Fatalf("UpdateProfile = %+v, %v", p, err)
	}
	got, err := s.Profile(ctx(t), "8901")
	if err != nil || got.Status != "ACTIVATED" || got.UsagePercent != 80.5 || !got.UpdatedAt.Equal(at) || len(got.History) != 1 {
		t.Errorf("Profile = %+v, %v", got, err)
	}
	o, err := s.UpdateOrder(ctx(t), "ORD1", func(o *store.Order) (bool, error) {
		o.Profiles = append(o.Profiles, "8901")
		return true, nil
	})
	if err != nil || o.OrderNo != "ORD1" || len(o.Profiles) != 1 {
		t.Fatalf("UpdateOrder = %+v, %v", o, err)
	}
	if got, err := s.Order(ctx(t), "ORD1"); err != nil || len(got.Profiles) != 1 || got.Profiles[0] != "8901" {
		t.Errorf("Order = %+v, %v", got, err)
	}
}

func testUnchangedNotWritten(t *testing.T, f Factory) {
	s := f(t, defaults)
	if _, err := s.UpdateProfile(ctx(t), "p", func(*store.Profile) (bool, error) { return false, nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Profile(ctx(t), "p"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("an unchanged profile was written: %v", err)
	}
	if _, err := s.UpdateOrder(ctx(t), "o", func(*store.Order) (bool, error) { return false, nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Order(ctx(t), "o"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("an unchanged order was written: %v", err)
	}
}

func testUpdateError(t *testing.T, f Factory) {
	s := f(t, defaults)
	boom := errors.New("boom")
	_, err := s.UpdateProfile(ctx(t), "p", func(p *store.Profile) (bool, error) {
		p.Status = "X"
		return true, boom
	})
	if !errors.Is(err, boom) {
		t.Errorf("err = %v, want boom", err)
	}
	if _, err := s.Profile(ctx(t), "p"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a failed update was written: %v", err)
	}
}

func testConcurrentUpdates(t *testing.T, f Factory) {
	s := f(t, defaults)
	const n = 16
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			entry := store.Transition{Status: fmt.Sprintf("S%02d", i)}
			if _, err := s.UpdateProfile(ctx(t), "hot", func(p *store.Profile) (bool, error) {
				p.History = append(p.History, entry)
				return true, nil
			}); err != nil {
				t.Errorf("profile writer %d: %v", i, err)
			}
			if _, err := s.UpdateOrder(ctx(t), "hot", func(o *store.Order) (bool, error) {
				o.Profiles = append(o.Profiles, entry.Status)
				return true, nil
			}); err != nil {
				t.Errorf("order writer %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	p, err := s.Profile(ctx(t), "hot")
	if err != nil || len(p.History) != n {
		t.Errorf("profile kept %d of %d concurrent updates (%v)", len(p.History), n, err)
	}
	o, err := s.Order(ctx(t), "hot")
	if err != nil || len(o.Profiles) != n {
		t.Errorf("order kept %d of %d concurrent updates (%v)", len(o.Profiles), n, err)
	}
}

func testOddIDs(t *testing.T, f Factory) {
	s := f(t, defaults)
	ids := []string{"a:b", "a/b", "a b", "a.b", "a*b", "a>b", "a=3Ab", "a{b}", "ünï", strings.Repeat("x", 300), "activation:8901"}
	for i, id := range ids {
		if _, err := s.UpdateProfile(ctx(t), id, func(p *store.Profile) (bool, error) {
			p.EsimTranNo = fmt.Sprint(i)
			return true, nil
		}); err != nil {
			t.Fatalf("update %q: %v", id, err)
		}
		if c, err := s.Claim(ctx(t), id, "o", time.Minute); err != nil || c.Outcome != store.Claimed {
			t.Fatalf("claim %q: %+v %v", id, c, err)
		}
		if err := s.MarkSeen(ctx(t), id); err != nil {
			t.Fatalf("mark seen %q: %v", id, err)
		}
	}
	for i, id := range ids {
		p, err := s.Profile(ctx(t), id)
		if err != nil || p.ICCID != id || p.EsimTranNo != fmt.Sprint(i) {
			t.Errorf("id %q read back as %+v (%v): ids collide or do not round-trip", id, p, err)
		}
		if seen, err := s.Seen(ctx(t), id); err != nil || !seen {
			t.Errorf("seen %q = %v, %v", id, seen, err)
		}
	}
}

func testSeen(t *testing.T, f Factory) {
	s := f(t, defaults)
	if seen, err := s.Seen(ctx(t), "k"); err != nil || seen {
		t.Fatalf("unmarked key: %v, %v", seen, err)
	}
	for range 2 {
		if err := s.MarkSeen(ctx(t), "k"); err != nil {
			t.Fatal(err)
		}
	}
	if seen, err := s.Seen(ctx(t), "k"); err != nil || !seen {
		t.Errorf("marked key: %v, %v", seen, err)
	}
	if seen, _ := s.Seen(ctx(t), "k2"); seen {
		t.Error("another key is seen")
	}
}

func testSeenExpires(t *testing.T, f Factory) {
	s := f(t, Options{SeenTTL: time.Second})
	if err := s.MarkSeen(ctx(t), "k"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 15*time.Second, "the seen mark to expire", func() bool {
		seen, err := s.Seen(ctx(t), "k")
		return err == nil && !seen
	})
}

func testClaimLifecycle(t *testing.T, f Factory) {
	s := f(t, defaults)
	c, err := s.Claim(ctx(t), "activation:1", "a", time.Minute)
	if err != nil || c.Outcome != store.Claimed || c.Attempt != 1 || c.Takeover || !c.LeaseUntil.After(time.Now()) {
		t.Fatalf("first claim = %+v, %v", c, err)
	}
	if st, _ := s.ClaimState(ctx(t), "activation:1"); st != store.ClaimHeld {
		t.Errorf("state = %q, want claimed", st)
	}
	if c, err := s.Claim(ctx(t), "activation:1", "b", time.Minute); err != nil || c.Outcome != store.HeldByOther || !c.LeaseUntil.After(time.Now()) {
		t.Errorf("second owner = %+v, %v", c, err)
	}
	if err := s.Finish(ctx(t), "activation:1", "b", store.ClaimSent); !errors.Is(err, store.ErrNotOwner) {
		t.Errorf("finish by non-owner: %v, want ErrNotOwner", err)
	}
	if err := s.Finish(ctx(t), "activation:1", "a", store.ClaimSent); err != nil {
		t.Fatalf("finish: %v", err)
	}
	if err := s.Finish(ctx(t), "activation:1", "a", store.ClaimSent); err != nil {
		t.Errorf("retried finish: %v", err)
	}
	if c, err := s.Claim(ctx(t), "activation:1", "b", time.Minute); err != nil || c.Outcome != store.AlreadyDone || c.State != store.ClaimSent {
		t.Errorf("claim after sent = %+v, %v", c, err)
	}
	if st, _ := s.ClaimState(ctx(t), "activation:1"); st != store.ClaimSent {
		t.Errorf("state = %q, want sent", st)
	}
	if err := s.Release(ctx(t), "activation:1", "a"); !errors.Is(err, store.ErrNotOwner) {
		t.Errorf("release after finish: %v, want ErrNotOwner", err)
	}

	// Suppressed is final the same way.
	if _, err := s.Claim(ctx(t), "low_data:1:80", "a", time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := s.Finish(ctx(t), "low_data:1:80", "a", store.ClaimSuppressed); err != nil {
		t.Fatal(err)
	}
	if c, _ := s.Claim(ctx(t), "low_data:1:80", "b", time.Minute); c.Outcome != store.AlreadyDone || c.State != store.ClaimSuppressed {
		t.Errorf("claim after suppressed = %+v", c)
	}
	if err := s.Finish(ctx(t), "nobody", "a", store.ClaimSent); !errors.Is(err, store.ErrNotOwner) {
		t.Errorf("finish of an unclaimed id: %v, want ErrNotOwner", err)
	}
}

func testClaimTakeover(t *testing.T, f Factory) {
	s := f(t, defaults)
	if _, err := s.Claim(ctx(t), "i", "a", time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := s.Release(ctx(t), "i", "a"); err != nil {
		t.Fatal(err)
	}
	c, err := s.Claim(ctx(t), "i", "b", 300*time.Millisecond)
	if err != nil || c.Outcome != store.Claimed || c.Attempt != 2 || c.Takeover {
		t.Fatalf("claim after release = %+v, %v", c, err)
	}
	// b's lease runs out without Finish or Release: b may have sent.
	var got store.Claim
	waitFor(t, 10*time.Second, "the lease to expire", func() bool {
		got, err = s.Claim(ctx(t), "i", "c", time.Minute)
		return err == nil && got.Outcome == store.Claimed
	})
	if got.Attempt != 3 || !got.Takeover {
		t.Errorf("claim after expiry = %+v, want attempt 3 with takeover", got)
	}
	if err := s.Finish(ctx(t), "i", "b", store.ClaimSent); !errors.Is(err, store.ErrNotOwner) {
		t.Errorf("finish by the expired owner: %v, want ErrNotOwner", err)
	}
	if err := s.Finish(ctx(t), "i", "c", store.ClaimSent); err != nil {
		t.Errorf("finish by the new owner: %v", err)
	}
}

func testConcurrentClaims(t *testing.T, f Factory) {
	s := f(t, defaults)
	const n = 16
	var wg sync.WaitGroup
	var mu sync.Mutex
	won := 0
	for i := range n {
		wg.Go(func() {
			c, err := s.Claim(ctx(t), "race", fmt.Sprint("owner", i), time.Minute)
			if err != nil {
				t.Errorf("claim %d: %v", i, err)
				return
			}
			if c.Outcome == store.Claimed {
				mu.Lock()
				won++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if won != 1 {
		t.Errorf("%d concurrent claims won, want exactly 1", won)
	}
}

func testNotificationLog(t *testing.T, f Factory) {
	s := f(t, defaults)
	at := time.Date(2024, 1, 15, 14, 0, 0, 123000000, time.UTC)
	entries := []store.Notification{
		{ID: "activation:1", Kind: "activation", ICCID: "1", Channel: "console", Status: "sent", Attempt: 1, SentAt: at},
		{ID: "low_data:1:80", Kind: "low_data", ICCID: "1", Threshold: 80, Channel: "console", Status: "failed", Error: "timeout", Attempt: 1, SentAt: at.Add(time.Second)},
		{ID: "low_data:1:80", Kind: "low_data", ICCID: "1", Threshold: 80, Channel: "console", Status: "sent", Attempt: 2, SentAt: at.Add(2 * time.Second)},
		{ID: "activation:2", Kind: "activation", ICCID: "2", Status: "sent", SentAt: at},
	}
	for _, e := range entries {
		if err := s.AppendNotification(ctx(t), e); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Notifications(ctx(t), "1")
	if err != nil || len(got) != 3 {
		t.Fatalf("Notifications = %+v, %v", got, err)
	}
	for i, want := range entries[:3] {
		g := got[i]
		if g.ID != want.ID || g.Status != want.Status || g.Threshold != want.Threshold || g.Error != want.Error ||
			g.Attempt != want.Attempt || g.Channel != want.Channel || !g.SentAt.Equal(want.SentAt) {
			t.Errorf("entry %d = %+v, want %+v", i, g, want)
		}
	}
	if none, err := s.Notifications(ctx(t), "nobody"); err != nil || none == nil || len(none) != 0 {
		t.Errorf("unknown iccid = %#v, %v; want an empty slice", none, err)
	}
}

func testNotificationLogBounded(t *testing.T, f Factory) {
	s := f(t, defaults)
	for i := range store.NotificationLogLimit + 5 {
		if err := s.AppendNotification(ctx(t), store.Notification{ID: fmt.Sprint(i), ICCID: "1", Status: "sent"}); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Notifications(ctx(t), "1")
	if err != nil || len(got) != store.NotificationLogLimit || got[0].ID != "5" {
		t.Errorf("kept %d entries starting at %q (%v)", len(got), firstID(got), err)
	}
}

func firstID(n []store.Notification) string {
	if len(n) == 0 {
		return ""
	}
	return n[0].ID
}

func waitFor(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", limit, what)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
