package kvstore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/esimflow/esimflow/shared/natstest"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
)

// TestGroupCommit holds commit to its contract on the newest server (one
// atomic batch: every key written with consecutive revisions, or none) and
// on ESIMFLOW_TEST_NATS_URL's (Debian's 2.9.10: never taken, so the batch
// methods write one by one).
func TestGroupCommit(t *testing.T) {
	onEachServer(t, func(t *testing.T, name string, s *Store, js jetstream.JetStream) {
		ctx := context.Background()
		if name == "embedded" && !s.atomic {
			t.Fatalf("server %s: group commit off", js.Conn().ConnectedServerVersion())
		}
		ws := []write{{key: "a", value: []byte("1")}, {key: "b", value: []byte("2")}, {key: "c", value: []byte("3"), blind: true}}
		revs, err := s.commit(ctx, s.state, ws)
		if !s.atomic {
			if !errors.Is(err, errNotCommitted) {
				t.Fatalf("commit on %s = %v, want errNotCommitted", js.Conn().ConnectedServerVersion(), err)
			}
			return
		}
		if err != nil {
			t.Fatalf("commit: %v", err)
		}
		for i, w := range ws {
			e, err := s.state.Get(ctx, w.key)
			if err != nil || e.Revision() != revs[i] || string(e.Value()) != string(w.value) {
				t.Errorf("%s after commit: %v, %v; want %q at revision %d", w.key, e, err, w.value, revs[i])
			}
		}
		// "a" moved on since revision 0: the batch is refused whole.
		_, err = s.commit(ctx, s.state, []write{{key: "d", value: []byte("4")}, {key: "a", value: []byte("5")}})
		if !errors.Is(err, errNotCommitted) {
			t.Fatalf("commit with a stale revision = %v, want errNotCommitted", err)
		}
		if _, err := s.state.Get(ctx, "d"); !errors.Is(err, jetstream.ErrKeyNotFound) {
			t.Errorf("d after a refused batch: %v, want not found", err)
		}
		if e, err := s.state.Get(ctx, "a"); err != nil || string(e.Value()) != "1" {
			t.Errorf("a after a refused batch: %v, %v; want 1", e, err)
		}
		// The revisions commit returned are the ones to update at.
		if _, err := s.commit(ctx, s.state, []write{{key: "a", value: []byte("6"), rev: revs[0]}, {key: "b", value: []byte("7"), rev: revs[1]}}); err != nil {
			t.Errorf("commit at the returned revisions: %v", err)
		}
	})
}

// TestCommitterConcurrent has many goroutines write at once through one
// committer, some of them at a stale revision: each gets its own answer,
// as if it had written alone — the fresh ones written at the revision
// returned, the stale ones a lost race and nothing written.
func TestCommitterConcurrent(t *testing.T) {
	onEachServer(t, func(t *testing.T, name string, s *Store, js jetstream.JetStream) {
		ctx := context.Background()
		const n = 64
		for i := range n {
			if i%4 == 0 { // written already: a create of it is stale
				if _, err := s.state.Put(ctx, fmt.Sprintf("k%d", i), []byte("old")); err != nil {
					t.Fatal(err)
				}
			}
		}
		revs, errs := make([]uint64, n), make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				revs[i], errs[i] = s.stateW.write(ctx, write{key: fmt.Sprintf("k%d", i), value: []byte("new")})
			})
		}
		wg.Wait()
		for i := range n {
			key := fmt.Sprintf("k%d", i)
			e, err := s.state.Get(ctx, key)
			if err != nil {
				t.Fatalf("%s: %v", key, err)
			}
			if i%4 == 0 {
				if !lostRace(errs[i]) || string(e.Value()) != "old" {
					t.Errorf("stale %s: write error %v, value %q; want a lost race and old", key, errs[i], e.Value())
				}
				continue
			}
			if errs[i] != nil || e.Revision() != revs[i] || string(e.Value()) != "new" {
				t.Errorf("%s: write = %d, %v; stored %q at %d", key, revs[i], errs[i], e.Value(), e.Revision())
			}
		}
	})
}

// TestNewLeavesBucketsAlone: a start that finds the buckets as asked
// updates neither (an update would switch atomic publishing off under the
// processes already batching on them), and one that changes a setting
// keeps group commit on.
func TestNewLeavesBucketsAlone(t *testing.T) {
	onEachServer(t, func(t *testing.T, name string, s *Store, js jetstream.JetStream) {
		ctx := context.Background()
		nc := js.Conn()
		updates, err := nc.SubscribeSync("$JS.EVENT.ADVISORY.STREAM.UPDATED.KV_" + s.state.Bucket())
		if err != nil {
			t.Fatal(err)
		}
		seenUpdates, err := nc.SubscribeSync("$JS.EVENT.ADVISORY.STREAM.UPDATED.KV_" + s.seen.Bucket())
		if err != nil {
			t.Fatal(err)
		}
		if err := nc.Flush(); err != nil {
			t.Fatal(err)
		}
		ns := strings.TrimSuffix(s.state.Bucket(), "_esimflow_state")
		again, err := New(ctx, js, Options{Namespace: ns, SeenTTL: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		if again.atomic != s.atomic {
			t.Errorf("group commit %v at the second start, %v at the first", again.atomic, s.atomic)
		}
		for _, sub := range []*nats.Subscription{updates, seenUpdates} {
			if m, err := sub.NextMsg(300 * time.Millisecond); err == nil {
				t.Errorf("a second start updated %s: %s", sub.Subject, m.Data)
			}
		}
		changed, err := New(ctx, js, Options{Namespace: ns, SeenTTL: 2 * time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := seenUpdates.NextMsg(2 * time.Second); err != nil {
			t.Errorf("a new seen TTL did not update the bucket: %v", err)
		}
		if changed.atomic != s.atomic {
			t.Errorf("group commit %v after a change, %v before", changed.atomic, s.atomic)
		}
	})
}

// BenchmarkGroupCommit runs the batch methods' writes and concurrent
// single-key writes on the all-in-one's server (in-process, fsync before
// every ack), each with group commit and without (as on a server older
// than 2.12), back to back in one process.
func BenchmarkGroupCommit(b *testing.B) {
	js := natstest.InProcessSyncAlways(b)
	ctx := context.Background()
	s, err := New(ctx, js, Options{SeenTTL: time.Hour})
	if err != nil {
		b.Fatal(err)
	}
	const n = 32
	for _, atomic := range []bool{false, true} {
		name := map[bool]string{false: "one-by-one", true: "group"}[atomic]
		s.atomic = atomic
		b.Run("ClaimMany32/"+name, func(b *testing.B) {
			run := name + "." + nuid.Next() // fresh keys each -count
			for i := 0; b.Loop(); i++ {
				ids := make([]string, n)
				for k := range ids {
					ids[k] = fmt.Sprintf("%s.%d.%d", run, i, k)
				}
				if _, err := s.ClaimMany(ctx, ids, "bench", time.Minute); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*n), "µs/write")
		})
		b.Run("MarkSeenMany32/"+name, func(b *testing.B) {
			run := name + "." + nuid.Next() // fresh keys each -count
			for i := 0; b.Loop(); i++ {
				keys := make([]string, n)
				for k := range keys {
					keys[k] = fmt.Sprintf("%s.%d.%d", run, i, k)
				}
				if err := s.MarkSeenMany(ctx, keys); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*n), "µs/write")
		})
		b.Run("Claim32concurrent/"+name, func(b *testing.B) {
			run := name + "." + nuid.Next() // fresh keys each -count
			for i := 0; b.Loop(); i++ {
				var wg sync.WaitGroup
				for k := range n {
					wg.Go(func() {
						if _, err := s.Claim(ctx, fmt.Sprintf("c%s.%d.%d", run, i, k), "bench", time.Minute); err != nil {
							b.Error(err)
						}
					})
				}
				wg.Wait()
			}
			b.ReportMetric(float64(b.Elapsed().Microseconds())/float64(b.N*n), "µs/write")
		})
	}
}

// onEachServer runs run on a store of the newest server (group commit on)
// and of ESIMFLOW_TEST_NATS_URL's (Debian's 2.9.10: off), named embedded
// and external.
func onEachServer(t *testing.T, run func(t *testing.T, name string, s *Store, js jetstream.JetStream)) {
	natstest.OnEachServer(t, func(t *testing.T, name string, js jetstream.JetStream, ns string) {
		s, err := New(context.Background(), js, Options{Namespace: ns, SeenTTL: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		run(t, name, s, js)
	})
}
