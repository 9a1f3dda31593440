package kvstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/esimflow/esimflow/shared/natstest"
	"github.com/esimflow/esimflow/shared/store"
	"github.com/esimflow/esimflow/shared/store/kvstore"
	"github.com/esimflow/esimflow/shared/store/storetest"
	"github.com/esimflow/esimflow/shared/testns"
	"github.com/nats-io/nats.go/jetstream"
)

// servers are what every test here runs on: the newest server in-process and,
// when ESIMFLOW_TEST_NATS_URL is set, that one (Debian's 2.9.10 here).
var servers = map[string]func(testing.TB) *natstest.Server{
	"embedded": natstest.StartEmbedded,
	"external": natstest.External,
}

func TestConformance(t *testing.T) {
	for name, start := range servers {
		t.Run(name, func(t *testing.T) {
			srv := start(t)
			js := jetStream(t, srv)
			storetest.Run(t, func(t *testing.T, opts storetest.Options) store.Store {
				return newStore(t, srv, js, kvstore.Options{Namespace: testns.New(t), SeenTTL: opts.SeenTTL})
			})
		})
	}
}

func TestNewValidates(t *testing.T) {
	for name, opts := range map[string]kvstore.Options{
		"no seen TTL":       {},
		"negative replicas": {SeenTTL: time.Hour, Replicas: -1},
	} {
		if _, err := kvstore.New(context.Background(), noJetStream{}, opts); err == nil {
			t.Errorf("%s: New succeeded", name)
		}
	}
	if _, err := kvstore.New(context.Background(), nil, kvstore.Options{SeenTTL: time.Hour}); err == nil {
		t.Error("nil jetstream: New succeeded")
	}
}

// TestNewIsIdempotent covers a restart, or several processes starting at once,
// against existing buckets, and a changed seen TTL being applied to them.
func TestNewIsIdempotent(t *testing.T) {
	for name, start := range servers {
		t.Run(name, func(t *testing.T) {
			srv := start(t)
			js := jetStream(t, srv)
			ns := testns.New(t)
			ctx := context.Background()
			first := newStore(t, srv, js, kvstore.Options{Namespace: ns, SeenTTL: time.Hour})
			if _, err := first.UpdateProfile(ctx, "1", func(p *store.Profile) (bool, error) {
				p.Status = "ACTIVATED"
				return true, nil
			}); err != nil {
				t.Fatal(err)
			}
			again := newStore(t, srv, js, kvstore.Options{Namespace: ns, SeenTTL: 2 * time.Hour})
			if p, err := again.Profile(ctx, "1"); err != nil || p.Status != "ACTIVATED" {
				t.Errorf("state after reopening = %+v, %v", p, err)
			}
			_, seen := kvstore.Buckets(ns)
			kv, err := js.KeyValue(ctx, seen)
			if err != nil {
				t.Fatal(err)
			}
			if st, err := kv.Status(ctx); err != nil || st.TTL() != 2*time.Hour {
				t.Errorf("seen bucket status = %v, %v; want the new TTL, 2h", st, err)
			}
		})
	}
}

func jetStream(t *testing.T, srv *natstest.Server) jetstream.JetStream {
	t.Helper()
	js, err := jetstream.New(srv.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// newStore opens a store whose buckets go when the test ends.
func newStore(t *testing.T, srv *natstest.Server, js jetstream.JetStream, opts kvstore.Options) *kvstore.Store {
	t.Helper()
	srv.RemoveNamespace(t, opts.Namespace)
	s, err := kvstore.New(context.Background(), js, opts)
	if err != nil {
		t.Fatalf("kvstore.New: %v", err)
	}
	return s
}

// noJetStream panics if New gets as far as the server: options are checked first.
type noJetStream struct{ jetstream.JetStream }
