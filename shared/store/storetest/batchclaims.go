package storetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/esimflow/esimflow/shared/poll"
	"github.com/esimflow/esimflow/shared/store"
)

// testClaimMany: each id of a batch is answered as Claim would answer it —
// fresh, held by another, held by the caller itself, final, dead-lettered —
// in the batch's order.
func testClaimMany(t *testing.T, f Factory) {
	s := f(t, defaults)
	c := ctx(t)
	if got, err := s.ClaimMany(c, nil, "a", time.Minute); err != nil || len(got) != 0 {
		t.Errorf("ClaimMany of none = %+v, %v; want none", got, err)
	}
	mustClaim := func(id, owner string) store.Claim {
		t.Helper()
		cl, err := s.Claim(c, id, owner, time.Minute)
		if err != nil || cl.Outcome != store.Claimed {
			t.Fatalf("claim %s by %s = %+v, %v", id, owner, cl, err)
		}
		return cl
	}
	heldB := mustClaim("held-b", "b")
	heldA := mustClaim("held-a", "a")
	mustClaim("sent", "b")
	mustClaim("dead", "b")
	for id, st := range map[string]store.ClaimState{"sent": store.ClaimSent, "dead": store.ClaimDeadLettered} {
		if err := s.Finish(c, id, "b", st); err != nil {
			t.Fatal(err)
		}
	}
	before := time.Now()
	got, err := s.ClaimMany(c, []string{"fresh", "held-b", "sent", "held-a", "dead"}, "a", time.Minute)
	if err != nil || len(got) != 5 {
		t.Fatalf("ClaimMany = %+v, %v; want 5 answers", got, err)
	}
	if g := got[0]; g.Outcome != store.Claimed || g.Attempt != 1 || g.Takeover || g.LeaseUntil.Before(before.Add(59*time.Second)) {
		t.Errorf("fresh: %+v; want claimed, attempt 1, a minute's lease", g)
	}
	if g := got[1]; g.Outcome != store.HeldByOther || g.Attempt != 1 || g.LeaseUntil.Sub(heldB.LeaseUntil).Abs() > time.Millisecond {
		t.Errorf("held by b: %+v; want held until %v", g, heldB.LeaseUntil)
	}
	if g := got[2]; g.Outcome != store.AlreadyDone || g.State != store.ClaimSent {
		t.Errorf("sent: %+v; want already done, sent", g)
	}
	if g := got[3]; g.Outcome != store.HeldByOther || g.LeaseUntil.Sub(heldA.LeaseUntil).Abs() > time.Millisecond {
		t.Errorf("held by the caller: %+v; want held (a redelivery must not send again)", g)
	}
	if g := got[4]; g.Outcome != store.Claimed || g.Attempt != 2 || g.Takeover {
		t.Errorf("dead-lettered: %+v; want claimed again, attempt 2, no takeover", g)
	}
	if st, err := s.ClaimState(c, "fresh"); err != nil || st != store.ClaimHeld {
		t.Errorf("fresh after ClaimMany: %q, %v; want claimed", st, err)
	}
}

// testClaimManyTakeover: a lease that ran out is taken over in a batch as
// by Claim, and flagged so.
func testClaimManyTakeover(t *testing.T, f Factory) {
	s := f(t, defaults)
	c := ctx(t)
	first, err := s.Claim(c, "i", "a", 100*time.Millisecond)
	if err != nil || first.Outcome != store.Claimed {
		t.Fatalf("claim = %+v, %v", first, err)
	}
	poll.Until(t, "the lease to run out", func() bool { return time.Now().After(first.LeaseUntil.Add(10 * time.Millisecond)) },
		poll.Timeout(5*time.Second))
	got, err := s.ClaimMany(c, []string{"i"}, "b", time.Minute)
	if err != nil || len(got) != 1 || got[0].Outcome != store.Claimed || got[0].Attempt != 2 || !got[0].Takeover {
		t.Errorf("ClaimMany after expiry = %+v, %v; want claimed, attempt 2, takeover", got, err)
	}
}

// testFinishMany: each id is finished as Finish would finish it, and what
// Finish would refuse is refused for that id alone.
func testFinishMany(t *testing.T, f Factory) {
	s := f(t, defaults)
	c := ctx(t)
	ids := []string{"sent", "suppressed", "dead", "other", "never", "nonfinal", "again"}
	for _, id := range ids {
		owner := "a"
		if id == "other" {
			owner = "b"
		}
		if id == "never" {
			continue
		}
		if cl, err := s.Claim(c, id, owner, time.Minute); err != nil || cl.Outcome != store.Claimed {
			t.Fatalf("claim %s = %+v, %v", id, cl, err)
		}
	}
	if err := s.Finish(c, "again", "a", store.ClaimSent); err != nil {
		t.Fatal(err)
	}
	states := []store.ClaimState{store.ClaimSent, store.ClaimSuppressed, store.ClaimDeadLettered, store.ClaimSent, store.ClaimSent,
		store.ClaimHeld, store.ClaimSent}
	errs, err := s.FinishMany(c, ids, "a", states)
	if err != nil || len(errs) != len(ids) {
		t.Fatalf("FinishMany = %v, %v; want one answer per id", errs, err)
	}
	for i, id := range ids {
		wantErr := id == "other" || id == "never" || id == "nonfinal"
		if (errs[i] != nil) != wantErr {
			t.Errorf("%s: %v; want an error: %v", id, errs[i], wantErr)
		}
		if (id == "other" || id == "never") && !errors.Is(errs[i], store.ErrNotOwner) {
			t.Errorf("%s: %v; want ErrNotOwner", id, errs[i])
		}
	}
	got, err := s.ClaimStates(c, ids)
	want := []store.ClaimState{store.ClaimSent, store.ClaimSuppressed, store.ClaimDeadLettered, store.ClaimHeld, store.ClaimNone,
		store.ClaimHeld, store.ClaimSent}
	if err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("ClaimStates = %q, %v; want %q", got, err, want)
	}
	if _, err := s.FinishMany(c, ids, "a", states[:1]); err == nil {
		t.Error("FinishMany with fewer states than ids: no error")
	}
}

// testConcurrentClaimMany: owners racing with batches over the same ids get
// exactly one winner per id.
func testConcurrentClaimMany(t *testing.T, f Factory) {
	s := f(t, defaults)
	ids := numbered("race")
	var (
		mu   sync.Mutex
		wins = map[string][]string{}
	)
	race(func(i int) {
		owner := fmt.Sprint("owner", i)
		got, err := s.ClaimMany(ctx(t), ids, owner, time.Minute)
		if err != nil || len(got) != len(ids) {
			t.Errorf("ClaimMany by %s = %+v, %v", owner, got, err)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		for j, c := range got {
			if c.Outcome == store.Claimed {
				wins[ids[j]] = append(wins[ids[j]], owner)
			}
		}
	})
	for _, id := range ids {
		if len(wins[id]) != 1 {
			t.Errorf("%s claimed by %v; want exactly one owner", id, wins[id])
		}
	}
}

// testContactMany: the stored contacts are found, the others left out.
func testContactMany(t *testing.T, f Factory) {
	s := f(t, defaults)
	c := ctx(t)
	a := store.Contact{TransactionID: "tx-a", Email: "a@example.com", Locale: "de", Channels: []string{"email"}}
	b := store.Contact{TransactionID: "tx-b", Phone: "+4915112345678", ICCIDs: []string{"8988000001"}}
	for _, k := range []store.Contact{a, b} {
		if err := s.PutContact(c, k); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.ContactMany(c, []string{"tx-a", "tx-none", "tx-b"})
	if err != nil || len(got) != 2 || !sameContact(got["tx-a"], a) || !sameContact(got["tx-b"], b) {
		t.Errorf("ContactMany = %+v, %v; want tx-a and tx-b", got, err)
	}
	if got, err := s.ContactMany(c, nil); err != nil || got == nil || len(got) != 0 {
		t.Errorf("ContactMany of none = %#v, %v; want an empty map", got, err)
	}

	// By ICCID: as ContactByICCID for each, an ICCID the contact no longer
	// lists left out.
	moved := store.Contact{TransactionID: "tx-c", Email: "c@example.com", ICCIDs: []string{"8988000002"}}
	if err := s.PutContact(c, moved); err != nil {
		t.Fatal(err)
	}
	moved.ICCIDs = []string{"8988000003"}
	if err := s.PutContact(c, moved); err != nil {
		t.Fatal(err)
	}
	byICCID, err := s.ContactManyByICCID(c, []string{"8988000001", "8988000002", "8988000003", "8988000009"})
	if err != nil || len(byICCID) != 2 || !sameContact(byICCID["8988000001"], b) || !sameContact(byICCID["8988000003"], moved) {
		t.Errorf("ContactManyByICCID = %+v, %v; want 8988000001's and 8988000003's", byICCID, err)
	}
	for _, iccid := range []string{"8988000001", "8988000002", "8988000003"} {
		one, err := s.ContactByICCID(c, iccid)
		if many, ok := byICCID[iccid]; ok != (err == nil) || ok && !sameContact(one, many) {
			t.Errorf("iccid %s: ContactByICCID %+v, %v; ContactManyByICCID %+v, %v", iccid, one, err, many, ok)
		}
	}
	if got, err := s.ContactManyByICCID(c, nil); err != nil || got == nil || len(got) != 0 {
		t.Errorf("ContactManyByICCID of none = %#v, %v; want an empty map", got, err)
	}
}

// testLogAppendMany: a batch of entries reads as the same entries appended
// one by one: in order per iccid, and the open intents as they leave them.
func testLogAppendMany(t *testing.T, f Factory) {
	s := f(t, defaults)
	at := time.Date(2024, 1, 15, 14, 0, 0, 0, time.UTC)
	entry := func(id, iccid, status string, sec int) store.Notification {
		return store.Notification{ID: id, Kind: "activation", ICCID: iccid, Status: status, Channel: "email", Attempt: 1,
			SentAt: at.Add(time.Duration(sec) * time.Second)}
	}
	log := []store.Notification{
		entry("a", "1", store.NotificationWaiting, 1),
		entry("b", "2", store.NotificationFailed, 2),
		entry("a", "1", "sent", 3), // closes a
		entry("c", "1", store.NotificationHeld, 4),
		entry("b", "2", store.NotificationRetriedUnknown, 5), // replaces b's open entry
	}
	if err := s.AppendNotifications(ctx(t), log); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendNotifications(ctx(t), nil); err != nil {
		t.Errorf("AppendNotifications of none: %v", err)
	}
	for iccid, want := range map[string][]store.Notification{"1": {log[0], log[2], log[3]}, "2": {log[1], log[4]}} {
		got, err := s.Notifications(ctx(t), iccid)
		if err != nil || len(got) != len(want) {
			t.Errorf("Notifications(%s) = %+v, %v; want %+v", iccid, got, err, want)
			continue
		}
		for i := range want {
			if !sameNotification(got[i], want[i]) {
				t.Errorf("Notifications(%s)[%d] = %+v; want %+v", iccid, i, got[i], want[i])
			}
		}
	}
	open, err := s.OpenNotifications(ctx(t), 10)
	if err != nil || len(open) != 2 || !sameNotification(open[0], log[4]) || !sameNotification(open[1], log[3]) {
		t.Errorf("OpenNotifications = %+v, %v; want b's retried_unknown, c's held", open, err)
	}
}

// testParkedMany: each key's entries, as Parked reads them, in the keys'
// order; a key with none gives an empty map.
func testParkedMany(t *testing.T, f Factory) {
	s := f(t, defaults)
	for _, p := range []struct{ key, id, body string }{{"tx:T1", "a", "A"}, {"tx:T1", "b", "B"}, {"iccid:89/01", "c", "C"}} {
		if err := s.Park(ctx(t), p.key, p.id, []byte(p.body), time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.ParkedMany(ctx(t), []string{"iccid:89/01", "tx:none", "tx:T1"})
	if err != nil || len(got) != 3 || len(got[0]) != 1 || string(got[0]["c"]) != "C" || got[1] == nil || len(got[1]) != 0 ||
		len(got[2]) != 2 || string(got[2]["a"]) != "A" || string(got[2]["b"]) != "B" {
		t.Errorf("ParkedMany = %q, %v; want c: C, nothing, a: A and b: B", got, err)
	}
}
