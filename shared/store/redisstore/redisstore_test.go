package redisstore_test

import (
	"context"
	"testing"

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
		ns := testns.New(t)
		s, err := redisstore.New(client, redisstore.Options{Namespace: ns, SeenTTL: opts.SeenTTL})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { deletePrefix(client, "esimflow:"+ns+":*") })
		return s
	})
}

// deletePrefix removes one test's keys; the server is shared, never flushed.
func deletePrefix(c redis.UniversalClient, pattern string) {
	ctx := context.Background()
	iter := c.Scan(ctx, 0, pattern, 500).Iterator()
	for iter.Next(ctx) {
		c.Del(ctx, iter.Val())
	}
}
