package storetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/esimflow/esimflow/shared/poll"
	"github.com/esimflow/esimflow/shared/store"
)

// Options are what a case asks of its fresh store.
type Options struct {
	SeenTTL time.Duration
}

// Factory returns a fresh store for one test, in a namespace of its own (see
// testns), and removes what it created with t.Cleanup.
type Factory func(t *testing.T, opts Options) store.Store

// Run runs the whole suite against the stores newStore makes.
func Run(t *testing.T, newStore Factory) {
	cases := []struct {
		name string
		fn   func(*testing.T, Factory)
	}{
		{"Ping", testPing},
		{"State/NotFound", testNotFound},
		{"State/UpdateCreates", testUpdateCreates},
		{"State/UpdateSeesStoredValue", testUpdateSeesStored},
		{"State/UnchangedIsNotWritten", testUnchangedNotWritten},
		{"State/FnErrorWritesNothing", testFnError},
		{"State/ConcurrentProfileUpdates", testConcurrentProfileUpdates},
		{"State/ConcurrentOrderUpdates", testConcurrentOrderUpdates},
		{"OddIDs", testOddIDs},
		{"BatchState/ReadWrite", testBatchState},
		{"BatchState/LostToAnotherWriter", testBatchStateLost},
		{"BatchState/SeenAndReadState", testSeenAndReadState},
		{"Seen/MarkAndCheck", testSeen},
		{"Seen/Expires", testSeenExpires},
		{"Seen/Batch", testSeenBatch},
		{"Claims/First", testClaimFirst},
		{"Claims/HeldByOther", testClaimHeld},
		{"Claims/Finish", testClaimFinish},
		{"Claims/FinishByNonOwner", testClaimFinishNonOwner},
		{"Claims/FinishNeedsFinalState", testClaimFinishNonFinal},
		{"Claims/Release", testClaimRelease},
		{"Claims/DeadLetteredIsReclaimable", testClaimDeadLettered},
		{"Claims/LeaseExpiryIsTakeover", testClaimTakeover},
		{"Claims/FinishAfterUntakenExpiry", testClaimFinishAfterExpiry},
		{"Claims/ConcurrentOneWinner", testConcurrentClaims},
		{"BatchClaims/ClaimMany", testClaimMany},
		{"BatchClaims/ClaimManyTakeover", testClaimManyTakeover},
		{"BatchClaims/FinishMany", testFinishMany},
		{"BatchClaims/ConcurrentOneWinnerEach", testConcurrentClaimMany},
		{"Contacts/Many", testContactMany},
		{"Log/AppendMany", testLogAppendMany},
		{"Parking/ParkedMany", testParkedMany},
		{"Contacts/PutGetDelete", testContacts},
		{"Contacts/ByICCID", testContactByICCID},
		{"Contacts/ByAddress", testContactByAddress},
		{"Contacts/ICCIDMovesToAnotherContact", testContactICCIDMoves},
		{"Contacts/ConcurrentPuts", testContactsConcurrent},
		{"Parking/ParkReadUnpark", testParking},
		{"Parking/Expires", testParkingExpires},
		{"Parking/Concurrent", testParkingConcurrent},
		{"Log/AppendAndRead", testLog},
		{"Log/Bounded", testLogBounded},
		{"Log/ConcurrentAppends", testLogConcurrent},
		{"Log/Open", testLogOpen},
		{"Log/OpenBounded", testLogOpenBounded},
		{"Log/OpenConcurrent", testLogOpenConcurrent},
		{"Budgets/ConcurrentTakesKeepTheLimit", testBudgetConcurrent},
		{"Budgets/NextWindowStartsAgain", testBudgetNextWindow},
		{"Budgets/BadArguments", testBudgetBadArguments},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			c.fn(t, newStore)
		})
	}
}

var defaults = Options{SeenTTL: time.Hour}

// concurrency is how many writers race on one key.
const concurrency = 16

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	t.Cleanup(cancel)
	return c
}

func testPing(t *testing.T, f Factory) {
	if err := f(t, defaults).Ping(ctx(t)); err != nil {
		t.Errorf("Ping: %v", err)
	}
}

func testNotFound(t *testing.T, f Factory) {
	s := f(t, defaults)
	if o, err := s.Order(ctx(t), "none"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Order = %+v, %v; want ErrNotFound", o, err)
	}
	if p, err := s.Profile(ctx(t), "none"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Profile = %+v, %v; want ErrNotFound", p, err)
	}
}

func testUpdateCreates(t *testing.T, f Factory) {
	s := f(t, defaults)
	at := time.Date(2024, 1, 15, 14, 0, 0, 123456789, time.UTC)
	// An offset other than UTC: the instant must survive, whatever the zone.
	later := time.Date(2024, 1, 15, 16, 30, 0, 0, time.FixedZone("CEST", 2*3600))

	p, err := s.UpdateProfile(ctx(t), "8901", func(p *store.Profile) (bool, error) {
		if want := (store.Profile{ICCID: "8901"}); !reflect.DeepEqual(*p, want) {
			t.Errorf("fn got %+v, want the zero profile with its iccid", *p)
		}
		p.OrderNo, p.Status, p.PreviousStatus = "ORD1", "ACTIVATED", "GOT_RESOURCE"
		p.UsedVolume, p.TotalVolume, p.UsagePercent = 800, 1000, 80.5
		p.History = []store.Transition{{Status: "ACTIVATED", PreviousStatus: "GOT_RESOURCE", At: at}}
		p.Install = &store.Install{ActivationCode: "LPA:1$smdp.example$K2-ABC", QRCodeURL: "https://p.example/qr/1.png", InstallURL: "https://p.example/i/1"}
		p.UpdatedAt = later
		return true, nil
	})
	if err != nil {
		t.Fatalf("UpdateProfile: %v", err)
	}
	if p.ICCID != "8901" || p.OrderNo != "ORD1" || p.Status != "ACTIVATED" || p.UsagePercent != 80.5 ||
		p.UsedVolume != 800 || !p.UpdatedAt.Equal(later) || len(p.History) != 1 || !p.History[0].At.Equal(at) ||
		p.Install == nil || p.Install.ActivationCode != "LPA:1$smdp.example$K2-ABC" {
		t.Errorf("UpdateProfile returned %+v", p)
	}
	if got, err := s.Profile(ctx(t), "8901"); err != nil || !reflect.DeepEqual(got, p) {
		t.Errorf("Profile = %+v, %v;\nwant what the update returned, %+v", got, err, p)
	}

	o, err := s.UpdateOrder(ctx(t), "ORD1", func(o *store.Order) (bool, error) {
		if want := (store.Order{OrderNo: "ORD1"}); !reflect.DeepEqual(*o, want) {
			t.Errorf("fn got %+v, want the zero order with its number", *o)
		}
		o.TransactionID, o.Status, o.Profiles, o.UpdatedAt = "tx1", "GOT_RESOURCE", []string{"8901", "8902"}, at
		return true, nil
	})
	if err != nil {
		t.Fatalf("UpdateOrder: %v", err)
	}
	if o.OrderNo != "ORD1" || o.TransactionID != "tx1" || !slices.Equal(o.Profiles, []string{"8901", "8902"}) || !o.UpdatedAt.Equal(at) {
		t.Errorf("UpdateOrder returned %+v", o)
	}
	if got, err := s.Order(ctx(t), "ORD1"); err != nil || !reflect.DeepEqual(got, o) {
		t.Errorf("Order = %+v, %v;\nwant what the update returned, %+v", got, err, o)
	}
}

func testUpdateSeesStored(t *testing.T, f Factory) {
	s := f(t, defaults)
	first, err := s.UpdateProfile(ctx(t), "p", func(p *store.Profile) (bool, error) {
		p.Status, p.UsedVolume = "IN_USE", 10
		return true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	second, err := s.UpdateProfile(ctx(t), "p", func(p *store.Profile) (bool, error) {
		if !reflect.DeepEqual(*p, first) {
			t.Errorf("fn got %+v, want the stored %+v", *p, first)
		}
		p.UsedVolume += 5
		return true, nil
	})
	if err != nil || second.UsedVolume != 15 || second.Status != "IN_USE" {
		t.Errorf("second update = %+v, %v", second, err)
	}
}

func testUnchangedNotWritten(t *testing.T, f Factory) {
	s := f(t, defaults)
	p, err := s.UpdateProfile(ctx(t), "p", func(*store.Profile) (bool, error) { return false, nil })
	if err != nil || !reflect.DeepEqual(p, store.Profile{ICCID: "p"}) {
		t.Errorf("unchanged new profile = %+v, %v; want the zero profile with its iccid", p, err)
	}
	if _, err := s.Profile(ctx(t), "p"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("an unchanged profile was written: %v", err)
	}
	o, err := s.UpdateOrder(ctx(t), "o", func(*store.Order) (bool, error) { return false, nil })
	if err != nil || o.OrderNo != "o" {
		t.Errorf("unchanged new order = %+v, %v", o, err)
	}
	if _, err := s.Order(ctx(t), "o"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("an unchanged order was written: %v", err)
	}

	// fn may scribble on its argument; unless it reports a change, the
	// stored value stays.
	if _, err := s.UpdateProfile(ctx(t), "q", func(p *store.Profile) (bool, error) { p.Status = "A"; return true, nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateProfile(ctx(t), "q", func(p *store.Profile) (bool, error) { p.Status = "B"; return false, nil }); err != nil {
		t.Fatal(err)
	}
	if got, err := s.Profile(ctx(t), "q"); err != nil || got.Status != "A" {
		t.Errorf("Profile = %+v, %v; want status A kept", got, err)
	}
}

func testFnError(t *testing.T, f Factory) {
	s := f(t, defaults)
	boom := errors.New("boom")
	for _, existing := range []bool{false, true} {
		id := fmt.Sprint("existing=", existing)
		if existing {
			if _, err := s.UpdateProfile(ctx(t), id, func(p *store.Profile) (bool, error) { p.Status = "A"; return true, nil }); err != nil {
				t.Fatal(err)
			}
			if _, err := s.UpdateOrder(ctx(t), id, func(o *store.Order) (bool, error) { o.Status = "A"; return true, nil }); err != nil {
				t.Fatal(err)
			}
		}
		_, perr := s.UpdateProfile(ctx(t), id, func(p *store.Profile) (bool, error) { p.Status = "X"; return true, boom })
		_, oerr := s.UpdateOrder(ctx(t), id, func(o *store.Order) (bool, error) { o.Status = "X"; return true, boom })
		for what, err := range map[string]error{"UpdateProfile": perr, "UpdateOrder": oerr} {
			if !errors.Is(err, boom) || err == boom {
				t.Errorf("%s, %s: err = %v; want boom, wrapped", id, what, err)
			}
		}
		p, perr := s.Profile(ctx(t), id)
		o, oerr := s.Order(ctx(t), id)
		if existing && (perr != nil || p.Status != "A" || oerr != nil || o.Status != "A") {
			t.Errorf("%s: a failed update changed the value: %+v %v, %+v %v", id, p, perr, o, oerr)
		}
		if !existing && (!errors.Is(perr, store.ErrNotFound) || !errors.Is(oerr, store.ErrNotFound)) {
			t.Errorf("%s: a failed update was written: %v, %v", id, perr, oerr)
		}
	}
}

// race runs fn(i) for i in [0, concurrency) at once.
func race(fn func(i int)) {
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range concurrency {
		wg.Go(func() {
			<-start
			fn(i)
		})
	}
	close(start)
	wg.Wait()
}

func numbered(prefix string) []string {
	var out []string
	for i := range concurrency {
		out = append(out, fmt.Sprintf("%s%02d", prefix, i))
	}
	return out
}

func testConcurrentProfileUpdates(t *testing.T, f Factory) {
	s := f(t, defaults)
	race(func(i int) {
		entry := store.Transition{Status: fmt.Sprintf("S%02d", i)}
		if _, err := s.UpdateProfile(ctx(t), "hot", func(p *store.Profile) (bool, error) {
			p.History = append(p.History, entry)
			return true, nil
		}); err != nil {
			t.Errorf("writer %d: %v", i, err)
		}
	})
	p, err := s.Profile(ctx(t), "hot")
	var got []string
	for _, h := range p.History {
		got = append(got, h.Status)
	}
	slices.Sort(got)
	if err != nil || !slices.Equal(got, numbered("S")) {
		t.Errorf("profile kept %v (%v); want all %d concurrent updates", got, err, concurrency)
	}
}

func testConcurrentOrderUpdates(t *testing.T, f Factory) {
	s := f(t, defaults)
	race(func(i int) {
		iccid := fmt.Sprintf("89%02d", i)
		if _, err := s.UpdateOrder(ctx(t), "hot", func(o *store.Order) (bool, error) {
			o.Profiles = append(o.Profiles, iccid)
			slices.Sort(o.Profiles)
			return true, nil
		}); err != nil {
			t.Errorf("writer %d: %v", i, err)
		}
	})
	o, err := s.Order(ctx(t), "hot")
	if err != nil || !slices.Equal(o.Profiles, numbered("89")) {
		t.Errorf("order kept %v (%v); want all %d concurrent updates", o.Profiles, err, concurrency)
	}
}

func testOddIDs(t *testing.T, f Factory) {
	s := f(t, defaults)
	ids := []string{
		"", "a", "A", "a:b", "a/b", "a b", "a.b", "a..b", ".a", "a.", "a*b", "a>b", "*", ">",
		"a=3Ab", "a=2Eb", "=", "a_b", "a-b", "a{b}", "{a}", "a}", "ünïcødé", "日本", "tab\there", "nl\n",
		strings.Repeat("x", 300), strings.Repeat("é", 300), strings.Repeat("/", 300),
		"activation:8901", "low_data:8901:80",
	}
	for i, id := range ids {
		mark := fmt.Sprint(i)
		if _, err := s.UpdateProfile(ctx(t), id, func(p *store.Profile) (bool, error) { p.EsimTranNo = mark; return true, nil }); err != nil {
			t.Fatalf("update profile %q: %v", id, err)
		}
		if _, err := s.UpdateOrder(ctx(t), id, func(o *store.Order) (bool, error) { o.TransactionID = mark; return true, nil }); err != nil {
			t.Fatalf("update order %q: %v", id, err)
		}
		// A claim that collided with an earlier id would be held already.
		if c, err := s.Claim(ctx(t), id, "o", time.Minute); err != nil || c.Outcome != store.Claimed || c.Attempt != 1 {
			t.Fatalf("claim %q = %+v, %v; want a first claim", id, c, err)
		}
		if err := s.AppendNotification(ctx(t), store.Notification{ID: mark, ICCID: id, Status: "sent"}); err != nil {
			t.Fatalf("append notification %q: %v", id, err)
		}
		if err := s.PutContact(ctx(t), store.Contact{TransactionID: id, Name: mark, ICCIDs: []string{id}}); err != nil {
			t.Fatalf("put contact %q: %v", id, err)
		}
		if i%2 == 0 {
			if err := s.MarkSeen(ctx(t), id); err != nil {
				t.Fatalf("mark seen %q: %v", id, err)
			}
		}
	}
	for i, id := range ids {
		mark := fmt.Sprint(i)
		if p, err := s.Profile(ctx(t), id); err != nil || p.ICCID != id || p.EsimTranNo != mark {
			t.Errorf("profile %q read back as %+v (%v)", id, p, err)
		}
		if o, err := s.Order(ctx(t), id); err != nil || o.OrderNo != id || o.TransactionID != mark {
			t.Errorf("order %q read back as %+v (%v)", id, o, err)
		}
		if st, err := s.ClaimState(ctx(t), id); err != nil || st != store.ClaimHeld {
			t.Errorf("claim state %q = %q, %v", id, st, err)
		}
		if log, err := s.Notifications(ctx(t), id); err != nil || len(log) != 1 || log[0].ID != mark || log[0].ICCID != id {
			t.Errorf("notifications %q = %+v, %v", id, log, err)
		}
		if c, err := s.Contact(ctx(t), id); err != nil || c.TransactionID != id || c.Name != mark {
			t.Errorf("contact %q read back as %+v (%v)", id, c, err)
		}
		if c, err := s.ContactByICCID(ctx(t), id); err != nil || c.TransactionID != id || c.Name != mark {
			t.Errorf("contact by iccid %q read back as %+v (%v)", id, c, err)
		}
		if seen, err := s.Seen(ctx(t), id); err != nil || seen != (i%2 == 0) {
			t.Errorf("seen %q = %v, %v; want %v", id, seen, err, i%2 == 0)
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
			t.Fatalf("MarkSeen: %v", err)
		}
	}
	if seen, err := s.Seen(ctx(t), "k"); err != nil || !seen {
		t.Errorf("marked key: %v, %v", seen, err)
	}
	if seen, err := s.Seen(ctx(t), "k2"); err != nil || seen {
		t.Errorf("another key: %v, %v", seen, err)
	}
}

func testSeenBatch(t *testing.T, f Factory) {
	s := f(t, defaults)
	if err := s.MarkSeenMany(ctx(t), []string{"a", "c", "a"}); err != nil {
		t.Fatal(err)
	}
	got, err := s.SeenMany(ctx(t), []string{"a", "b", "c", "d"})
	if err != nil || !slices.Equal(got, []bool{true, false, true, false}) {
		t.Errorf("SeenMany = %v, %v; want [true false true false]", got, err)
	}
	if got, err := s.SeenMany(ctx(t), nil); err != nil || len(got) != 0 {
		t.Errorf("SeenMany(nil) = %v, %v", got, err)
	}
	if err := s.MarkSeenMany(ctx(t), nil); err != nil {
		t.Errorf("MarkSeenMany(nil): %v", err)
	}
	if seen, err := f(t, defaults).Seen(ctx(t), "a"); err != nil || seen {
		t.Errorf("another namespace sees the key: %v, %v", seen, err)
	}
}

func testBatchState(t *testing.T, f Factory) {
	s := f(t, defaults)
	if _, err := s.UpdateProfile(ctx(t), "p1", func(p *store.Profile) (bool, error) { p.Status = "RELEASED"; return true, nil }); err != nil {
		t.Fatal(err)
	}
	snap := store.NewSnapshot()
	if err := s.ReadState(ctx(t), snap, []string{"o1"}, []string{"p1", "p2"}); err != nil {
		t.Fatal(err)
	}
	if o := snap.Orders["o1"]; o == nil || o.Value.OrderNo != "o1" || o.Version != nil {
		t.Fatalf("never-written order = %+v; want its zero value with the id and no version", o)
	}
	if p := snap.Profiles["p1"]; p == nil || p.Value.Status != "RELEASED" || p.Version == nil {
		t.Fatalf("stored profile = %+v; want it as stored, with a version", p)
	}
	snap.Orders["o1"].Value.Status = "GOT_RESOURCE"
	snap.Orders["o1"].Value.Profiles = []string{"p1", "p2"}
	snap.Profiles["p1"].Value.Status = "ACTIVATED"
	snap.Profiles["p2"].Value.Status = "RELEASED"
	lost, err := s.WriteState(ctx(t), snap, []string{"o1"}, []string{"p1", "p2"})
	if err != nil || !lost.Empty() {
		t.Fatalf("WriteState = %+v, %v; want all written", lost, err)
	}
	if o, err := s.Order(ctx(t), "o1"); err != nil || o.Status != "GOT_RESOURCE" || len(o.Profiles) != 2 {
		t.Errorf("order after WriteState = %+v, %v", o, err)
	}
	if p, err := s.Profile(ctx(t), "p1"); err != nil || p.Status != "ACTIVATED" {
		t.Errorf("profile after WriteState = %+v, %v", p, err)
	}
	// The snapshot moves to what it wrote: writing again from it succeeds.
	snap.Profiles["p1"].Value.Status = "SUSPENDED"
	if lost, err := s.WriteState(ctx(t), snap, nil, []string{"p1"}); err != nil || !lost.Empty() {
		t.Errorf("second WriteState from the same snapshot = %+v, %v; want written", lost, err)
	}
	// Already held entries are not read again.
	if err := s.ReadState(ctx(t), snap, []string{"o1"}, []string{"p1"}); err != nil || snap.Profiles["p1"].Value.Status != "SUSPENDED" {
		t.Errorf("ReadState replaced a held entry: %+v, %v", snap.Profiles["p1"], err)
	}
	if _, err := s.WriteState(ctx(t), snap, []string{"o-not-read"}, nil); err == nil {
		t.Error("WriteState of an order the snapshot lacks: no error")
	}
}

// testSeenAndReadState: the one-round-trip read answers what SeenMany and
// ReadState answer apart.
func testSeenAndReadState(t *testing.T, f Factory) {
	s := f(t, defaults)
	if err := s.MarkSeenMany(ctx(t), []string{"a", "c"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateProfile(ctx(t), "p1", func(p *store.Profile) (bool, error) { p.Status = "RELEASED"; return true, nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateOrder(ctx(t), "o1", func(o *store.Order) (bool, error) { o.Status = "GOT_RESOURCE"; return true, nil }); err != nil {
		t.Fatal(err)
	}
	snap, apart := store.NewSnapshot(), store.NewSnapshot()
	seen, err := s.SeenAndReadState(ctx(t), []string{"a", "b", "c", "d"}, snap, []string{"o1", "o2"}, []string{"p1", "p2"})
	if err != nil || !slices.Equal(seen, []bool{true, false, true, false}) {
		t.Fatalf("SeenAndReadState = %v, %v; want [true false true false]", seen, err)
	}
	if err := s.ReadState(ctx(t), apart, []string{"o1", "o2"}, []string{"p1", "p2"}); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(snap, apart) {
		t.Errorf("SeenAndReadState's snapshot %+v differs from ReadState's %+v", snap, apart)
	}
	// Already held entries are not read again; no keys, no state is fine.
	snap.Profiles["p1"].Value.Status = "HELD"
	if seen, err := s.SeenAndReadState(ctx(t), nil, snap, nil, []string{"p1"}); err != nil || len(seen) != 0 || snap.Profiles["p1"].Value.Status != "HELD" {
		t.Errorf("SeenAndReadState of a held entry = %v, %v, %+v", seen, err, snap.Profiles["p1"])
	}
	if seen, err := s.SeenAndReadState(ctx(t), []string{"c"}, store.NewSnapshot(), nil, nil); err != nil || !slices.Equal(seen, []bool{true}) {
		t.Errorf("SeenAndReadState of keys only = %v, %v", seen, err)
	}
}

func testBatchStateLost(t *testing.T, f Factory) {
	s := f(t, defaults)
	if _, err := s.UpdateProfile(ctx(t), "p1", func(p *store.Profile) (bool, error) { p.Status = "RELEASED"; return true, nil }); err != nil {
		t.Fatal(err)
	}
	snap := store.NewSnapshot()
	if err := s.ReadState(ctx(t), snap, []string{"o1"}, []string{"p1"}); err != nil {
		t.Fatal(err)
	}
	// Another writer changes the profile and creates the order in between.
	if _, err := s.UpdateProfile(ctx(t), "p1", func(p *store.Profile) (bool, error) { p.UsagePercent = 50; return true, nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateOrder(ctx(t), "o1", func(o *store.Order) (bool, error) { o.Status = "GOT_RESOURCE"; return true, nil }); err != nil {
		t.Fatal(err)
	}
	snap.Profiles["p1"].Value.Status = "ACTIVATED"
	snap.Orders["o1"].Value.Status = "CANCELLED"
	lost, err := s.WriteState(ctx(t), snap, []string{"o1"}, []string{"p1"})
	if err != nil || !slices.Equal(lost.Orders, []string{"o1"}) || !slices.Equal(lost.Profiles, []string{"p1"}) {
		t.Fatalf("WriteState over another writer = %+v, %v; want both lost", lost, err)
	}
	if p, err := s.Profile(ctx(t), "p1"); err != nil || p.Status != "RELEASED" || p.UsagePercent != 50 {
		t.Errorf("profile = %+v, %v; want the other writer's value untouched", p, err)
	}
	if o, err := s.Order(ctx(t), "o1"); err != nil || o.Status != "GOT_RESOURCE" {
		t.Errorf("order = %+v, %v; want the other writer's value untouched", o, err)
	}
}

func testSeenExpires(t *testing.T, f Factory) {
	s := f(t, Options{SeenTTL: time.Second})
	if err := s.MarkSeen(ctx(t), "k"); err != nil {
		t.Fatal(err)
	}
	if seen, err := s.Seen(ctx(t), "k"); err != nil || !seen {
		t.Fatalf("just marked: %v, %v", seen, err)
	}
	poll.Until(t, "the seen mark to expire", func() bool {
		seen, err := s.Seen(ctx(t), "k")
		if err != nil {
			t.Fatalf("Seen: %v", err)
		}
		return !seen
	}, poll.Timeout(10*time.Second))
}

func testClaimFirst(t *testing.T, f Factory) {
	s := f(t, defaults)
	if st, err := s.ClaimState(ctx(t), "activation:1"); err != nil || st != store.ClaimNone {
		t.Errorf("never claimed: state %q, %v; want none", st, err)
	}
	before := time.Now()
	c, err := s.Claim(ctx(t), "activation:1", "a", time.Minute)
	if err != nil || c.Outcome != store.Claimed || c.Attempt != 1 || c.Takeover || c.LeaseUntil.Before(before.Add(59*time.Second)) {
		t.Fatalf("first claim = %+v, %v; want claimed, attempt 1, a minute's lease", c, err)
	}
	if st, err := s.ClaimState(ctx(t), "activation:1"); err != nil || st != store.ClaimHeld {
		t.Errorf("state = %q, %v; want claimed", st, err)
	}
}

func testClaimHeld(t *testing.T, f Factory) {
	s := f(t, defaults)
	first, err := s.Claim(ctx(t), "i", "a", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	for _, owner := range []string{"b", "a"} {
		c, err := s.Claim(ctx(t), "i", owner, time.Minute)
		if err != nil || c.Outcome != store.HeldByOther || c.Attempt != 1 || c.Takeover ||
			c.LeaseUntil.Sub(first.LeaseUntil).Abs() > time.Millisecond {
			t.Errorf("claim by %s = %+v, %v; want held until %v", owner, c, err, first.LeaseUntil)
		}
	}
}

func testClaimFinish(t *testing.T, f Factory) {
	s := f(t, defaults)
	for _, final := range []store.ClaimState{store.ClaimSent, store.ClaimSuppressed} {
		id := "intent-" + string(final)
		if _, err := s.Claim(ctx(t), id, "a", time.Minute); err != nil {
			t.Fatal(err)
		}
		if err := s.Finish(ctx(t), id, "a", final); err != nil {
			t.Fatalf("finish %s: %v", final, err)
		}
		if st, err := s.ClaimState(ctx(t), id); err != nil || st != final {
			t.Errorf("state = %q, %v; want %q", st, err, final)
		}
		for _, owner := range []string{"b", "a"} {
			if c, err := s.Claim(ctx(t), id, owner, time.Minute); err != nil || c.Outcome != store.AlreadyDone || c.State != final {
				t.Errorf("claim by %s after %s = %+v, %v; want already done", owner, final, c, err)
			}
		}
		if err := s.Finish(ctx(t), id, "a", final); err != nil {
			t.Errorf("repeated finish %s: %v; want it to succeed", final, err)
		}
		other := store.ClaimSent
		if final == store.ClaimSent {
			other = store.ClaimSuppressed
		}
		if err := s.Finish(ctx(t), id, "a", other); !errors.Is(err, store.ErrNotOwner) {
			t.Errorf("finish %s after %s: %v; want ErrNotOwner", other, final, err)
		}
		if err := s.Release(ctx(t), id, "a"); !errors.Is(err, store.ErrNotOwner) {
			t.Errorf("release after %s: %v; want ErrNotOwner", final, err)
		}
		if st, _ := s.ClaimState(ctx(t), id); st != final {
			t.Errorf("state = %q after refused calls; want %q", st, final)
		}
	}
}

func testClaimFinishNonOwner(t *testing.T, f Factory) {
	s := f(t, defaults)
	if _, err := s.Claim(ctx(t), "i", "a", time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := s.Finish(ctx(t), "i", "b", store.ClaimSent); !errors.Is(err, store.ErrNotOwner) {
		t.Errorf("finish by non-owner: %v; want ErrNotOwner", err)
	}
	if err := s.Release(ctx(t), "i", "b"); !errors.Is(err, store.ErrNotOwner) {
		t.Errorf("release by non-owner: %v; want ErrNotOwner", err)
	}
	if st, _ := s.ClaimState(ctx(t), "i"); st != store.ClaimHeld {
		t.Errorf("state = %q; want still claimed", st)
	}
	if err := s.Finish(ctx(t), "never", "a", store.ClaimSent); !errors.Is(err, store.ErrNotOwner) {
		t.Errorf("finish of an unclaimed id: %v; want ErrNotOwner", err)
	}
	if err := s.Release(ctx(t), "never", "a"); !errors.Is(err, store.ErrNotOwner) {
		t.Errorf("release of an unclaimed id: %v; want ErrNotOwner", err)
	}
	if st, _ := s.ClaimState(ctx(t), "never"); st != store.ClaimNone {
		t.Errorf("refused calls created a claim: %q", st)
	}
}

func testClaimFinishNonFinal(t *testing.T, f Factory) {
	s := f(t, defaults)
	if _, err := s.Claim(ctx(t), "i", "a", time.Minute); err != nil {
		t.Fatal(err)
	}
	for _, st := range []store.ClaimState{store.ClaimNone, store.ClaimHeld, "bogus"} {
		if err := s.Finish(ctx(t), "i", "a", st); err == nil {
			t.Errorf("Finish(%q) succeeded; want an error", st)
		}
	}
	if st, _ := s.ClaimState(ctx(t), "i"); st != store.ClaimHeld {
		t.Errorf("state = %q; want still claimed", st)
	}
}

func testClaimRelease(t *testing.T, f Factory) {
	s := f(t, defaults)
	if _, err := s.Claim(ctx(t), "i", "a", time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := s.Release(ctx(t), "i", "a"); err != nil {
		t.Fatalf("release: %v", err)
	}
	if st, err := s.ClaimState(ctx(t), "i"); err != nil || st != store.ClaimHeld {
		t.Errorf("released state = %q, %v; want claimed (free to claim)", st, err)
	}
	if err := s.Finish(ctx(t), "i", "a", store.ClaimSent); !errors.Is(err, store.ErrNotOwner) {
		t.Errorf("finish after release: %v; want ErrNotOwner", err)
	}
	c, err := s.Claim(ctx(t), "i", "b", time.Minute)
	if err != nil || c.Outcome != store.Claimed || c.Attempt != 2 || c.Takeover {
		t.Fatalf("claim after release = %+v, %v; want claimed at once, attempt 2, no takeover", c, err)
	}
	if err := s.Release(ctx(t), "i", "a"); !errors.Is(err, store.ErrNotOwner) {
		t.Errorf("release by the previous owner: %v; want ErrNotOwner", err)
	}
	if err := s.Finish(ctx(t), "i", "b", store.ClaimSent); err != nil {
		t.Errorf("finish by the new owner: %v", err)
	}
}

// testClaimDeadLettered: a claim finished as dead-lettered is not held (an
// intent ordered after it stops waiting), nor final: a re-drive claims it
// at once, without a takeover, and may then send it.
func testClaimDeadLettered(t *testing.T, f Factory) {
	s := f(t, defaults)
	if _, err := s.Claim(ctx(t), "i", "a", time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := s.Finish(ctx(t), "i", "a", store.ClaimDeadLettered); err != nil {
		t.Fatalf("finish as dead-lettered: %v", err)
	}
	if err := s.Finish(ctx(t), "i", "a", store.ClaimDeadLettered); err != nil {
		t.Errorf("finish as dead-lettered again: %v; want nil (idempotent)", err)
	}
	if st, err := s.ClaimState(ctx(t), "i"); err != nil || st != store.ClaimDeadLettered {
		t.Errorf("state = %q, %v; want dead_lettered", st, err)
	}
	if err := s.Release(ctx(t), "i", "a"); !errors.Is(err, store.ErrNotOwner) {
		t.Errorf("release of a dead-lettered claim: %v; want ErrNotOwner", err)
	}
	c, err := s.Claim(ctx(t), "i", "b", time.Minute)
	if err != nil || c.Outcome != store.Claimed || c.Attempt != 2 || c.Takeover {
		t.Fatalf("claim after dead-lettering = %+v, %v; want claimed at once, attempt 2, no takeover", c, err)
	}
	if err := s.Finish(ctx(t), "i", "b", store.ClaimSent); err != nil {
		t.Errorf("finish the re-driven claim: %v", err)
	}
	if st, _ := s.ClaimState(ctx(t), "i"); st != store.ClaimSent {
		t.Errorf("state = %q; want sent", st)
	}
}

func testClaimTakeover(t *testing.T, f Factory) {
	s := f(t, defaults)
	first, err := s.Claim(ctx(t), "i", "a", 200*time.Millisecond)
	if err != nil || first.Outcome != store.Claimed {
		t.Fatalf("claim = %+v, %v", first, err)
	}
	// a's lease runs out without Finish or Release: a may have sent.
	var c store.Claim
	poll.Until(t, "the lease to run out", func() bool {
		if c, err = s.Claim(ctx(t), "i", "b", time.Minute); err != nil {
			t.Fatalf("claim: %v", err)
		}
		if c.Outcome == store.HeldByOther && time.Now().After(first.LeaseUntil.Add(time.Second)) {
			t.Fatalf("still held a second after the lease ended: %+v", c)
		}
		return c.Outcome == store.Claimed
	}, poll.Timeout(10*time.Second))
	if c.Attempt != 2 || !c.Takeover {
		t.Errorf("claim after expiry = %+v; want attempt 2 with takeover", c)
	}
	if err := s.Finish(ctx(t), "i", "a", store.ClaimSent); !errors.Is(err, store.ErrNotOwner) {
		t.Errorf("finish by the expired owner: %v; want ErrNotOwner", err)
	}
	if err := s.Release(ctx(t), "i", "a"); !errors.Is(err, store.ErrNotOwner) {
		t.Errorf("release by the expired owner: %v; want ErrNotOwner", err)
	}
	if err := s.Finish(ctx(t), "i", "b", store.ClaimSent); err != nil {
		t.Errorf("finish by the new owner: %v", err)
	}
}

func testClaimFinishAfterExpiry(t *testing.T, f Factory) {
	s := f(t, defaults)
	c, err := s.Claim(ctx(t), "i", "a", 100*time.Millisecond)
	if err != nil || c.Outcome != store.Claimed {
		t.Fatalf("claim = %+v, %v", c, err)
	}
	poll.Until(t, "the lease to run out", func() bool { return time.Now().After(c.LeaseUntil) }, poll.Timeout(5*time.Second))
	// Nobody took it over, so a's send is the only one: recording it spares
	// the customer a second message.
	if err := s.Finish(ctx(t), "i", "a", store.ClaimSent); err != nil {
		t.Errorf("finish after an untaken expiry: %v", err)
	}
	if got, err := s.Claim(ctx(t), "i", "b", time.Minute); err != nil || got.Outcome != store.AlreadyDone {
		t.Errorf("claim after finish = %+v, %v; want already done", got, err)
	}
}

func testConcurrentClaims(t *testing.T, f Factory) {
	s := f(t, defaults)
	var (
		mu       sync.Mutex
		outcomes = map[store.ClaimOutcome]int{}
	)
	race(func(i int) {
		c, err := s.Claim(ctx(t), "race", fmt.Sprint("owner", i), time.Minute)
		if err != nil {
			t.Errorf("claim %d: %v", i, err)
			return
		}
		if c.Attempt != 1 {
			t.Errorf("claim %d = %+v; want attempt 1", i, c)
		}
		mu.Lock()
		outcomes[c.Outcome]++
		mu.Unlock()
	})
	if outcomes[store.Claimed] != 1 || outcomes[store.HeldByOther] != concurrency-1 {
		t.Errorf("outcomes of %d concurrent claims: %v; want exactly one claimed", concurrency, outcomes)
	}
}

// Callers on every instance race for one budget: exactly the limit are
// granted in a window, and budgets count apart.
func testBudgetConcurrent(t *testing.T, f Factory) {
	s := f(t, defaults)
	const limit, per = 5, time.Hour
	for {
		before := store.Window(time.Now(), per)
		var granted, other atomic.Int32
		race(func(i int) {
			budget := "acct"
			if i%4 == 3 {
				budget = "other"
			}
			ok, err := s.Take(ctx(t), budget, limit, per)
			if err != nil {
				t.Errorf("take %d: %v", i, err)
			}
			if ok && budget == "acct" {
				granted.Add(1)
			} else if ok {
				other.Add(1)
			}
		})
		if store.Window(time.Now(), per) != before {
			continue // the hour turned during the race: counts span two windows
		}
		if granted.Load() != limit || other.Load() != concurrency/4 {
			t.Errorf("%d of %d takes granted with a limit of %d, %d of %d on another budget; want the limit, and all",
				granted.Load(), concurrency-concurrency/4, limit, other.Load(), concurrency/4)
		}
		return
	}
}

// A spent budget gives again in the next window.
func testBudgetNextWindow(t *testing.T, f Factory) {
	s := f(t, defaults)
	const per = 50 * time.Millisecond
	round := 0
	take := func() bool {
		ok, err := s.Take(ctx(t), fmt.Sprint("acct", round), 1, per)
		if err != nil {
			t.Fatal(err)
		}
		return ok
	}
	deadline := time.Now().Add(10 * time.Second)
	sawRefusal := false
	for !sawRefusal && time.Now().Before(deadline) {
		round++ // a budget of its own: the last round may have taken from this window
		w := store.Window(time.Now(), per)
		first, second := take(), take()
		if store.Window(time.Now(), per) == w {
			if !first || second {
				t.Fatalf("one-call budget in one window: %v then %v, want granted then refused", first, second)
			}
			sawRefusal = true
		}
	}
	if !sawRefusal {
		t.Fatal("never took twice within one window")
	}
	poll.Until(t, "a call granted in a later window", take, poll.Every(per/5))
}

func testBudgetBadArguments(t *testing.T, f Factory) {
	s := f(t, defaults)
	for _, c := range []struct {
		limit int
		per   time.Duration
	}{{0, time.Second}, {1, 0}, {-1, -time.Second}} {
		if ok, err := s.Take(ctx(t), "acct", c.limit, c.per); err == nil || ok {
			t.Errorf("Take(limit %d, per %v) = %v, %v; want an error", c.limit, c.per, ok, err)
		}
	}
}

func testContacts(t *testing.T, f Factory) {
	s := f(t, defaults)
	if c, err := s.Contact(ctx(t), "tx1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Contact of none = %+v, %v; want ErrNotFound", c, err)
	}
	if err := s.DeleteContact(ctx(t), "tx1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("DeleteContact of none = %v; want ErrNotFound", err)
	}
	at := time.Date(2024, 1, 15, 14, 0, 0, 123456789, time.FixedZone("CET", 3600))
	want := store.Contact{TransactionID: "tx1", Name: "Ana Lima", Email: "ana@example.com", Phone: "+351912345678",
		Locale: "pt-BR", TimeZone: "America/Sao_Paulo", Channels: []string{"whatsapp", "sms", "email"}, OptOut: []string{"low_data", "validity_low"},
		ICCIDs: []string{"8901", "8902"}, UpdatedAt: at}
	if err := s.PutContact(ctx(t), want); err != nil {
		t.Fatalf("PutContact: %v", err)
	}
	if got, err := s.Contact(ctx(t), "tx1"); err != nil || !sameContact(got, want) {
		t.Errorf("Contact = %+v, %v;\nwant %+v", got, err, want)
	}
	if _, err := s.Contact(ctx(t), "tx2"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("another id: %v; want ErrNotFound", err)
	}
	// A put replaces the whole contact: fields left out are gone.
	replaced := store.Contact{TransactionID: "tx1", Email: "ana@example.org"}
	if err := s.PutContact(ctx(t), replaced); err != nil {
		t.Fatalf("PutContact again: %v", err)
	}
	if got, err := s.Contact(ctx(t), "tx1"); err != nil || !sameContact(got, replaced) {
		t.Errorf("Contact after replace = %+v, %v;\nwant %+v", got, err, replaced)
	}
	if err := s.DeleteContact(ctx(t), "tx1"); err != nil {
		t.Fatalf("DeleteContact: %v", err)
	}
	if _, err := s.Contact(ctx(t), "tx1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Contact after delete: %v; want ErrNotFound", err)
	}
	if err := s.DeleteContact(ctx(t), "tx1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("second DeleteContact = %v; want ErrNotFound", err)
	}
	// A deleted contact can be registered again.
	if err := s.PutContact(ctx(t), want); err != nil {
		t.Fatalf("PutContact after delete: %v", err)
	}
	if got, err := s.Contact(ctx(t), "tx1"); err != nil || !sameContact(got, want) {
		t.Errorf("Contact after re-put = %+v, %v", got, err)
	}
}

func sameContact(a, b store.Contact) bool {
	if !a.UpdatedAt.Equal(b.UpdatedAt) {
		return false
	}
	a.UpdatedAt, b.UpdatedAt = time.Time{}, time.Time{}
	return reflect.DeepEqual(a, b)
}

// contactOf returns the transactionId ContactByICCID finds, "" for none.
func contactOf(t *testing.T, s store.Store, iccid string) string {
	t.Helper()
	c, err := s.ContactByICCID(ctx(t), iccid)
	if errors.Is(err, store.ErrNotFound) {
		return ""
	}
	if err != nil {
		t.Fatalf("ContactByICCID(%s): %v", iccid, err)
	}
	if !slices.Contains(c.ICCIDs, iccid) {
		t.Errorf("ContactByICCID(%s) gave %+v, which does not list it", iccid, c)
	}
	return c.TransactionID
}

func testContactByICCID(t *testing.T, f Factory) {
	s := f(t, defaults)
	if got := contactOf(t, s, "8901"); got != "" {
		t.Errorf("no contacts, iccid 8901 -> %q", got)
	}
	put := func(c store.Contact) {
		t.Helper()
		if err := s.PutContact(ctx(t), c); err != nil {
			t.Fatalf("PutContact: %v", err)
		}
	}
	put(store.Contact{TransactionID: "tx1", Email: "a@example.com", ICCIDs: []string{"8901", "8902"}})
	steps := []struct {
		name string
		do   func()
		want map[string]string // iccid -> transactionId, "" for none
	}{
		{"listed iccids", func() {}, map[string]string{"8901": "tx1", "8902": "tx1", "8903": ""}},
		{"a replace drops an iccid and adds one",
			func() { put(store.Contact{TransactionID: "tx1", ICCIDs: []string{"8902", "8903"}}) },
			map[string]string{"8901": "", "8902": "tx1", "8903": "tx1"}},
		{"a replace without iccids drops them all",
			func() { put(store.Contact{TransactionID: "tx1"}) },
			map[string]string{"8901": "", "8902": "", "8903": ""}},
		{"iccids again", func() { put(store.Contact{TransactionID: "tx1", ICCIDs: []string{"8901"}}) },
			map[string]string{"8901": "tx1"}},
		{"delete removes them", func() {
			if err := s.DeleteContact(ctx(t), "tx1"); err != nil {
				t.Fatal(err)
			}
		}, map[string]string{"8901": ""}},
	}
	for _, st := range steps {
		st.do()
		for iccid, want := range st.want {
			if got := contactOf(t, s, iccid); got != want {
				t.Errorf("%s: iccid %s -> %q, want %q", st.name, iccid, got, want)
			}
		}
	}
}

// testContactByAddress: a contact is found by its email, in any case, and
// by its phone; a replace or delete drops the old addresses; an address
// another contact takes names that one.
func testContactByAddress(t *testing.T, f Factory) {
	s := f(t, defaults)
	put := func(c store.Contact) {
		t.Helper()
		if err := s.PutContact(ctx(t), c); err != nil {
			t.Fatalf("PutContact: %v", err)
		}
	}
	of := func(address string) string {
		t.Helper()
		c, err := s.ContactByAddress(ctx(t), address)
		if errors.Is(err, store.ErrNotFound) {
			return ""
		}
		if err != nil {
			t.Fatalf("ContactByAddress(%s): %v", address, err)
		}
		if !c.HasAddress(address) {
			t.Errorf("ContactByAddress(%s) gave %+v, which does not have it", address, c)
		}
		return c.TransactionID
	}
	if got := of("ana@example.com"); got != "" {
		t.Errorf("no contacts: %q", got)
	}
	put(store.Contact{TransactionID: "tx1", Email: "Ana@Example.com", Phone: "+4915112345678"})
	steps := []struct {
		name string
		do   func()
		want map[string]string // address -> transactionId, "" for none
	}{
		{"email in any case, phone", func() {},
			map[string]string{"ana@example.com": "tx1", "ANA@EXAMPLE.COM": "tx1", "+4915112345678": "tx1", "+4915100000000": ""}},
		{"a replace drops the old email",
			func() { put(store.Contact{TransactionID: "tx1", Email: "ana@new.example", Phone: "+4915112345678"}) },
			map[string]string{"ana@example.com": "", "ana@new.example": "tx1", "+4915112345678": "tx1"}},
		{"another contact takes the phone",
			func() { put(store.Contact{TransactionID: "tx2", Phone: "+4915112345678"}) },
			map[string]string{"+4915112345678": "tx2", "ana@new.example": "tx1"}},
		{"delete removes its addresses, not the taken one", func() {
			if err := s.DeleteContact(ctx(t), "tx1"); err != nil {
				t.Fatal(err)
			}
		}, map[string]string{"ana@new.example": "", "+4915112345678": "tx2"}},
	}
	for _, st := range steps {
		st.do()
		for address, want := range st.want {
			if got := of(address); got != want {
				t.Errorf("%s: %s -> %q, want %q", st.name, address, got, want)
			}
		}
	}
}

func testContactICCIDMoves(t *testing.T, f Factory) {
	s := f(t, defaults)
	for _, c := range []store.Contact{
		{TransactionID: "tx1", ICCIDs: []string{"8901", "8902"}},
		{TransactionID: "tx2", ICCIDs: []string{"8902"}}, // the last put naming an iccid wins
	} {
		if err := s.PutContact(ctx(t), c); err != nil {
			t.Fatal(err)
		}
	}
	if got := contactOf(t, s, "8902"); got != "tx2" {
		t.Errorf("8902 -> %q, want tx2 (the last put naming it)", got)
	}
	// tx1 drops 8902, which tx2 holds now: tx2 keeps it.
	if err := s.PutContact(ctx(t), store.Contact{TransactionID: "tx1", ICCIDs: []string{"8901"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteContact(ctx(t), "tx1"); err != nil {
		t.Fatal(err)
	}
	if got := contactOf(t, s, "8902"); got != "tx2" {
		t.Errorf("after tx1 let go: 8902 -> %q, want tx2", got)
	}
	// tx2 is replaced without 8902 while tx1 still lists it from before: the
	// stale index entry to tx2 leads nowhere.
	if err := s.PutContact(ctx(t), store.Contact{TransactionID: "tx3", ICCIDs: []string{"8904"}}); err != nil {
		t.Fatal(err)
	}
	if err := s.PutContact(ctx(t), store.Contact{TransactionID: "tx2", ICCIDs: []string{"8904"}}); err != nil {
		t.Fatal(err)
	}
	if got := contactOf(t, s, "8902"); got != "" {
		t.Errorf("8902 -> %q, want none", got)
	}
	if got := contactOf(t, s, "8904"); got != "tx2" {
		t.Errorf("8904 -> %q, want tx2", got)
	}
}

func testContactsConcurrent(t *testing.T, f Factory) {
	s := f(t, defaults)
	race(func(i int) {
		c := store.Contact{TransactionID: "hot", Name: fmt.Sprintf("writer%02d", i), ICCIDs: []string{fmt.Sprintf("89%02d", i)}}
		if err := s.PutContact(ctx(t), c); err != nil {
			t.Errorf("writer %d: %v", i, err)
		}
	})
	c, err := s.Contact(ctx(t), "hot")
	if err != nil || len(c.ICCIDs) != 1 || c.Name != "writer"+c.ICCIDs[0][2:] {
		t.Fatalf("contact after concurrent puts = %+v, %v; want one writer's whole contact", c, err)
	}
	// Whatever the index kept, it leads only to the winner's iccid.
	for _, iccid := range numbered("89") {
		want := ""
		if iccid == c.ICCIDs[0] {
			want = "hot"
		}
		if got := contactOf(t, s, iccid); got != want {
			t.Errorf("iccid %s -> %q, want %q", iccid, got, want)
		}
	}
}

func testLog(t *testing.T, f Factory) {
	s := f(t, defaults)
	at := time.Date(2024, 1, 15, 14, 0, 0, 123456789, time.UTC)
	entries := []store.Notification{
		{ID: "activation:1", Kind: "activation", ICCID: "1", Channel: "email", Status: "sent", Attempt: 1, SentAt: at},
		{ID: "low_data:1:80", Kind: "low_data", ICCID: "1", Threshold: 80, TransactionID: "tx1", Channel: "sms", Status: "failed", Attempt: 1, Error: "timeout", SentAt: at.Add(time.Second)},
		{ID: "activation:2", Kind: "activation", ICCID: "2", Channel: "console", Status: "sent", Attempt: 1, SentAt: at},
		{ID: "low_data:1:80", Kind: "low_data", ICCID: "1", Threshold: 80, Channel: "sms", Status: "retried_unknown", Attempt: 2,
			SentAt: at.Add(2 * time.Second).In(time.FixedZone("", -5*3600))},
		{ID: "validity_low:1:p:3", Kind: "validity_low", ICCID: "1", Status: "held", SentAt: at.Add(3 * time.Second),
			ReleaseAt: at.Add(9 * time.Hour)},
	}
	for _, e := range entries {
		if err := s.AppendNotification(ctx(t), e); err != nil {
			t.Fatalf("append: %v", err)
		}
	}
	for iccid, want := range map[string][]store.Notification{
		"1":       {entries[0], entries[1], entries[3], entries[4]},
		"2":       {entries[2]},
		"nobody":  {},
		"1-other": {},
	} {
		got, err := s.Notifications(ctx(t), iccid)
		if err != nil || got == nil || len(got) != len(want) {
			t.Errorf("Notifications(%s) = %#v, %v; want %d entries", iccid, got, err, len(want))
			continue
		}
		for i := range want {
			if !sameNotification(got[i], want[i]) {
				t.Errorf("Notifications(%s)[%d] = %+v; want %+v", iccid, i, got[i], want[i])
			}
		}
	}
}

func sameNotification(a, b store.Notification) bool {
	if !a.SentAt.Equal(b.SentAt) || !a.ReleaseAt.Equal(b.ReleaseAt) {
		return false
	}
	a.SentAt, b.SentAt, a.ReleaseAt, b.ReleaseAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	return a == b
}

func testLogBounded(t *testing.T, f Factory) {
	s := f(t, defaults)
	const extra = 5
	for i := range store.NotificationLogLimit + extra {
		if err := s.AppendNotification(ctx(t), store.Notification{ID: fmt.Sprint(i), ICCID: "1", Status: "sent"}); err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
	}
	got, err := s.Notifications(ctx(t), "1")
	if err != nil || len(got) != store.NotificationLogLimit {
		t.Fatalf("kept %d entries (%v); want %d", len(got), err, store.NotificationLogLimit)
	}
	for i, n := range got {
		if n.ID != fmt.Sprint(i+extra) {
			t.Fatalf("entry %d is %q; want the newest %d in order, from %d", i, n.ID, store.NotificationLogLimit, extra)
		}
	}
}

func testLogConcurrent(t *testing.T, f Factory) {
	s := f(t, defaults)
	race(func(i int) {
		if err := s.AppendNotification(ctx(t), store.Notification{ID: fmt.Sprintf("n%02d", i), ICCID: "1", Status: "sent"}); err != nil {
			t.Errorf("append %d: %v", i, err)
		}
	})
	got, err := s.Notifications(ctx(t), "1")
	var ids []string
	for _, n := range got {
		ids = append(ids, n.ID)
	}
	slices.Sort(ids)
	if err != nil || !slices.Equal(ids, numbered("n")) {
		t.Errorf("log kept %v (%v); want all %d concurrent appends", ids, err, concurrency)
	}
}

// testLogOpen: an intent whose latest entry is waiting, failed,
// retried_unknown or held is open, with that entry; sent, suppressed and
// dead_lettered close it; newest first, across iccids, at most limit.
func testLogOpen(t *testing.T, f Factory) {
	s := f(t, defaults)
	at := time.Date(2024, 1, 15, 14, 0, 0, 0, time.UTC)
	entry := func(id, iccid, status string, sec int) store.Notification {
		return store.Notification{ID: id, Kind: "activation", ICCID: iccid, Status: status, Error: status + " why", SentAt: at.Add(time.Duration(sec) * time.Second)}
	}
	if got, err := s.OpenNotifications(ctx(t), 10); err != nil || got == nil || len(got) != 0 {
		t.Fatalf("OpenNotifications of an empty store = %#v, %v; want an empty slice", got, err)
	}
	log := []store.Notification{
		entry("a", "1", store.NotificationWaiting, 1),
		entry("b", "2", store.NotificationFailed, 2),
		entry("c", "3", store.NotificationWaiting, 3),
		entry("a", "1", store.NotificationFailed, 4), // replaces a's waiting entry
		entry("c", "3", "sent", 5),                   // closes c
		entry("d", "4", store.NotificationRetriedUnknown, 6),
		entry("e", "4", store.NotificationFailed, 7),
		entry("e", "4", "dead_lettered", 8),
		entry("f", "5", "suppressed", 9), // closes what was never open
		entry("g", "5", store.NotificationWaiting, 10),
		entry("g", "5", "suppressed", 11),
		entry("h", "6", store.NotificationHeld, 12), // quiet hours: open until released
	}
	for _, e := range log {
		if err := s.AppendNotification(ctx(t), e); err != nil {
			t.Fatalf("append %+v: %v", e, err)
		}
	}
	want := []store.Notification{log[11], log[5], log[3], log[1]} // h, d, a (failed), b
	for _, limit := range []int{10, 2, 0} {
		got, err := s.OpenNotifications(ctx(t), limit)
		w := want[:min(limit, len(want))]
		if err != nil || len(got) != len(w) {
			t.Errorf("OpenNotifications(%d) = %+v, %v; want %+v", limit, got, err, w)
			continue
		}
		for i := range w {
			if !sameNotification(got[i], w[i]) {
				t.Errorf("OpenNotifications(%d)[%d] = %+v; want %+v", limit, i, got[i], w[i])
			}
		}
	}
}

// testLogOpenBounded: beyond store.OpenNotificationLimit the oldest open
// intents drop out.
func testLogOpenBounded(t *testing.T, f Factory) {
	s := f(t, defaults)
	at := time.Date(2024, 1, 15, 14, 0, 0, 0, time.UTC)
	const extra = 3
	for i := range store.OpenNotificationLimit + extra {
		n := store.Notification{ID: fmt.Sprintf("n%04d", i), ICCID: fmt.Sprint(i % 7), Status: store.NotificationFailed, SentAt: at.Add(time.Duration(i) * time.Second)}
		if err := s.AppendNotification(ctx(t), n); err != nil {
			t.Fatalf("append %d: %v", i, err)
		}
	}
	got, err := s.OpenNotifications(ctx(t), store.OpenNotificationLimit+extra)
	if err != nil || len(got) != store.OpenNotificationLimit {
		t.Fatalf("%d open (%v); want %d", len(got), err, store.OpenNotificationLimit)
	}
	if first, last := got[0].ID, got[len(got)-1].ID; first != fmt.Sprintf("n%04d", store.OpenNotificationLimit+extra-1) || last != fmt.Sprintf("n%04d", extra) {
		t.Errorf("open from %s to %s; want the newest %d", first, last, store.OpenNotificationLimit)
	}
}

// testLogOpenConcurrent: intents opened at once by many writers are all
// listed.
func testLogOpenConcurrent(t *testing.T, f Factory) {
	s := f(t, defaults)
	at := time.Date(2024, 1, 15, 14, 0, 0, 0, time.UTC)
	race(func(i int) {
		n := store.Notification{ID: fmt.Sprintf("n%02d", i), ICCID: fmt.Sprint(i), Status: store.NotificationWaiting, SentAt: at.Add(time.Duration(i) * time.Second)}
		if err := s.AppendNotification(ctx(t), n); err != nil {
			t.Errorf("append %d: %v", i, err)
		}
	})
	got, err := s.OpenNotifications(ctx(t), 100)
	var ids []string
	for _, n := range got {
		ids = append(ids, n.ID)
	}
	slices.Sort(ids)
	if err != nil || !slices.Equal(ids, numbered("n")) {
		t.Errorf("open %v (%v); want all %d", ids, err, concurrency)
	}
}

func testParking(t *testing.T, f Factory) {
	s := f(t, defaults)
	if got, err := s.Parked(ctx(t), "tx:none"); err != nil || len(got) != 0 {
		t.Fatalf("Parked of an unused key = %v, %v; want empty", got, err)
	}
	for _, p := range []struct{ key, id, body string }{
		{"tx:T1", "a", "A"}, {"tx:T1", "b", "B"}, {"iccid:89/01", "a", "A"}, {"tx:T1", "a", "A2"},
	} {
		if err := s.Park(ctx(t), p.key, p.id, []byte(p.body), time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	got, err := s.Parked(ctx(t), "tx:T1")
	if err != nil || len(got) != 2 || string(got["a"]) != "A2" || string(got["b"]) != "B" {
		t.Fatalf("Parked = %q, %v; want a: A2 (parked again), b: B", got, err)
	}
	if err := s.Unpark(ctx(t), "tx:T1", "a", "never"); err != nil {
		t.Fatal(err)
	}
	if got, _ := s.Parked(ctx(t), "tx:T1"); len(got) != 1 || string(got["b"]) != "B" {
		t.Errorf("after Unpark(a) = %q; want b alone", got)
	}
	if got, _ := s.Parked(ctx(t), "iccid:89/01"); len(got) != 1 {
		t.Errorf("another key's entries = %q; want untouched", got)
	}
	if err := s.Unpark(ctx(t), "tx:unused", "x"); err != nil {
		t.Errorf("Unpark of an unused key: %v", err)
	}
}

func testParkingExpires(t *testing.T, f Factory) {
	s := f(t, defaults)
	if err := s.Park(ctx(t), "k", "a", []byte("A"), 200*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, "the parked entry to expire", func() bool {
		got, err := s.Parked(ctx(t), "k")
		return err == nil && len(got) == 0
	})
}

func testParkingConcurrent(t *testing.T, f Factory) {
	s := f(t, defaults)
	ids := numbered("m")
	race(func(i int) {
		if err := s.Park(ctx(t), "k", ids[i], []byte(ids[i]), time.Minute); err != nil {
			t.Error(err)
		}
	})
	got, err := s.Parked(ctx(t), "k")
	if err != nil || len(got) != concurrency {
		t.Fatalf("%d parked, %v; want %d", len(got), err, concurrency)
	}
}
