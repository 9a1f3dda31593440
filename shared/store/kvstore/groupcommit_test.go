package kvstore

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/esimflow/esimflow/shared/natstest"
	"github.com/esimflow/esimflow/shared/testns"
	"github.com/nats-io/nats.go/jetstream"
)

// TestGroupCommit holds commit to its contract on the newest server (one
// atomic batch: every key written with consecutive revisions, or none) and
// on ESIMFLOW_TEST_NATS_URL's (Debian's 2.9.10: never taken, so the batch
// methods write one by one).
func TestGroupCommit(t *testing.T) {
	for name, start := range map[string]func(testing.TB) *natstest.Server{
		"embedded": natstest.StartEmbedded,
		"external": natstest.External,
	} {
		t.Run(name, func(t *testing.T) {
			srv := start(t)
			js, err := jetstream.New(srv.Connect(t))
			if err != nil {
				t.Fatal(err)
			}
			ns := testns.New(t)
			srv.RemoveNamespace(t, ns)
			ctx := context.Background()
			s, err := New(ctx, js, Options{Namespace: ns, SeenTTL: time.Hour})
			if err != nil {
				t.Fatal(err)
			}
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
}
