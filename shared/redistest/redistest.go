// Package redistest gives tests a real Redis: the one named by
// ESIMFLOW_TEST_REDIS_URL, else a testcontainers Redis where Docker runs, else
// the test is skipped with the reason. Tests isolate themselves by key prefix
// (testns) and never flush the server.
package redistest

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	tcredis "github.com/testcontainers/testcontainers-go/modules/redis"
)

// EnvURL names the variable that points tests at a Redis.
const EnvURL = "ESIMFLOW_TEST_REDIS_URL"

// URL returns a Redis URL for the test, or skips it.
func URL(t testing.TB) string {
	t.Helper()
	if url := os.Getenv(EnvURL); url != "" {
		return url
	}
	return containerURL(t)
}

// Client returns a client for URL(t), closed when the test ends.
func Client(t testing.TB) redis.UniversalClient {
	t.Helper()
	url := URL(t)
	opts, err := redis.ParseURL(url)
	if err != nil {
		t.Fatalf("redistest: %s: %v", EnvURL, err)
	}
	c := redis.NewClient(opts)
	t.Cleanup(func() { _ = c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := c.Ping(ctx).Err(); err != nil {
		t.Fatalf("redistest: ping %s: %v", url, err)
	}
	return c
}

func containerURL(t testing.TB) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var (
		ctr *tcredis.RedisContainer
		err error
	)
	func() {
		// testcontainers panics when no Docker engine can be found.
		defer func() {
			if r := recover(); r != nil {
				t.Skipf("%s unset and no Docker for testcontainers: %v", EnvURL, r)
			}
		}()
		ctr, err = tcredis.Run(ctx, "redis:7-alpine")
	}()
	if err != nil {
		t.Skipf("%s unset and testcontainers could not start Redis: %v", EnvURL, err)
	}
	t.Cleanup(func() { _ = ctr.Terminate(context.Background()) })
	url, err := ctr.ConnectionString(ctx)
	if err != nil {
		t.Fatalf("redistest: container address: %v", err)
	}
	return url
}

// RemovePrefix deletes, when the test ends, the keys of namespace ns
// ("esimflow:<ns>:*"): what the test wrote on a shared server, never more.
// On a cluster client it scans every primary.
func RemovePrefix(t testing.TB, c redis.UniversalClient, ns string) {
	t.Helper()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		var err error
		if cc, ok := c.(*redis.ClusterClient); ok {
			err = cc.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error { return removePrefix(ctx, m, ns) })
		} else {
			err = removePrefix(ctx, c, ns)
		}
		if err != nil {
			t.Errorf("redistest: cleanup %s: %v", ns, err)
		}
	})
}

func removePrefix(ctx context.Context, c redis.Cmdable, ns string) error {
	iter := c.Scan(ctx, 0, "esimflow:"+ns+":*", 500).Iterator()
	for iter.Next(ctx) {
		c.Del(ctx, iter.Val())
	}
	return iter.Err()
}
