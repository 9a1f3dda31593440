package redisstore_test

import (
	"context"
	"testing"
	"time"

	"github.com/esimflow/esimflow/shared/clustertest"
	"github.com/esimflow/esimflow/shared/redistest"
	"github.com/esimflow/esimflow/shared/store"
	"github.com/esimflow/esimflow/shared/store/redisstore"
	"github.com/esimflow/esimflow/shared/store/storetest"
	"github.com/esimflow/esimflow/shared/testns"
	"github.com/redis/go-redis/v9"
)

func TestConformance(t *testing.T) {
	client := redistest.Client(t)
	storetest.Run(t, func(t *testing.T, opts storetest.Options) store.Store {
		return newStore(t, client, redisstore.Options{Namespace: testns.New(t), SeenTTL: opts.SeenTTL})
	})
}

// TestConformanceCluster runs the suite on a Redis Cluster of three primaries
// through go-redis's cluster client: a command whose keys spanned slots would
// fail with CROSSSLOT, a WATCH or MULTI across primaries with an error.
func TestConformanceCluster(t *testing.T) {
	r := clustertest.RedisCluster(t)
	client := r.Client()
	t.Cleanup(func() { _ = client.Close() })
	storetest.Run(t, func(t *testing.T, opts storetest.Options) store.Store {
		return newStore(t, client, redisstore.Options{Namespace: testns.New(t), SeenTTL: opts.SeenTTL})
	})
}

func TestNewValidates(t *testing.T) {
	if _, err := redisstore.New(nil, redisstore.Options{SeenTTL: time.Hour}); err == nil {
		t.Error("nil client: New succeeded")
	}
	client := redis.NewClient(&redis.Options{Addr: "127.0.0.1:0"}) // never dialled
	defer client.Close()
	if _, err := redisstore.New(client, redisstore.Options{}); err == nil {
		t.Error("no seen TTL: New succeeded")
	}
}

func TestKeys(t *testing.T) {
	client := redistest.Client(t)
	ns := testns.New(t)
	s := newStore(t, client, redisstore.Options{Namespace: ns, SeenTTL: time.Hour})
	ctx := context.Background()
	if _, err := s.UpdateProfile(ctx, "8901", func(p *store.Profile) (bool, error) { p.Status = "A"; return true, nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.UpdateOrder(ctx, "O1", func(o *store.Order) (bool, error) { o.Status = "A"; return true, nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Claim(ctx, "activation:8901", "o", time.Minute); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendNotification(ctx, store.Notification{ID: "activation:8901", ICCID: "8901", Status: "sent"}); err != nil {
		t.Fatal(err)
	}
	if err := s.MarkSeen(ctx, "k"); err != nil {
		t.Fatal(err)
	}
	if err := s.PutContact(ctx, store.Contact{TransactionID: "tx1", Email: "a@example.com", ICCIDs: []string{"8901"}}); err != nil {
		t.Fatal(err)
	}
	p := "esimflow:" + ns + ":"
	if got := redisstore.Prefix(ns); got != p {
		t.Errorf("Prefix = %q, want %q", got, p)
	}
	if got := redisstore.Prefix(""); got != "esimflow:" {
		t.Errorf("Prefix without namespace = %q", got)
	}
	for key, typ := range map[string]string{
		p + "{p:8901}": "string", p + "{o:O1}": "string", p + "{c:activation:8901}": "hash",
		p + "{l:8901}": "list", p + "{s:k}": "string", p + "{k:tx1}": "string", p + "{ki:8901}": "string",
		p + "{ka:a@example.com}": "string",
	} {
		if got := client.Type(ctx, key).Val(); got != typ {
			t.Errorf("%s is a %q, want a %s", key, got, typ)
		}
	}
	if n := len(client.Keys(ctx, p+"*").Val()); n != 8 {
		t.Errorf("%d keys under %s, want 8", n, p)
	}
	if ttl := client.TTL(ctx, p+"{s:k}").Val(); ttl <= 0 || ttl > time.Hour {
		t.Errorf("seen mark TTL = %v, want up to an hour", ttl)
	}
	if ttl := client.TTL(ctx, p+"{c:activation:8901}").Val(); ttl != -1 {
		t.Errorf("claim TTL = %v, want none: a claim outlives every redelivery", ttl)
	}
}

// newStore opens a store whose keys go when the test ends; the server is
// shared, so it is never flushed.
func newStore(t testing.TB, client redis.UniversalClient, opts redisstore.Options) *redisstore.Store {
	t.Helper()
	redistest.RemovePrefix(t, client, opts.Namespace)
	s, err := redisstore.New(client, opts)
	if err != nil {
		t.Fatalf("redisstore.New: %v", err)
	}
	return s
}
