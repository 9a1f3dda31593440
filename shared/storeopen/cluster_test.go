package storeopen_test

import (
	"context"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/esimflow/esimflow/shared/clustertest"
	"github.com/esimflow/esimflow/shared/config"
	"github.com/esimflow/esimflow/shared/store"
	"github.com/esimflow/esimflow/shared/store/kvstore"
	"github.com/esimflow/esimflow/shared/storeopen"
	"github.com/esimflow/esimflow/shared/testns"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
)

func TestClusterOptions(t *testing.T) {
	for _, tt := range []struct {
		name, url string
		addrs     []string
		user, pw  string
		tls       bool
		wantErr   bool
	}{
		{"seeds", "redis+cluster://10.0.0.1:6379,10.0.0.2:6379,10.0.0.3:6379", []string{"10.0.0.1:6379", "10.0.0.2:6379", "10.0.0.3:6379"}, "", "", false, false},
		{"one seed", "redis+cluster://r:6379", []string{"r:6379"}, "", "", false, false},
		{"user and password", "redis+cluster://esim:s3cret@r1:6379,r2:6379/", []string{"r1:6379", "r2:6379"}, "esim", "s3cret", false, false},
		{"tls", "rediss+cluster://r1:6380,r2:6380", []string{"r1:6380", "r2:6380"}, "", "", true, false},
		{"database 0", "redis+cluster://r1:6379/0", []string{"r1:6379"}, "", "", false, false},
		{"another database", "redis+cluster://r1:6379/2", nil, "", "", false, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			o, err := storeopen.ClusterOptions(config.Store{URL: tt.url})
			if tt.wantErr {
				if err == nil {
					t.Fatalf("no error for %s", tt.url)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(o.Addrs, tt.addrs) || o.Username != tt.user || o.Password != tt.pw || (o.TLSConfig != nil) != tt.tls {
				t.Errorf("addrs %v user %q password %q tls %v", o.Addrs, o.Username, o.Password, o.TLSConfig != nil)
			}
			if o.ClusterStateReloadInterval > 5*time.Second {
				t.Errorf("slot layout reloaded every %v: a failover goes unnoticed that long", o.ClusterStateReloadInterval)
			}
		})
	}
	if storeopen.IsCluster("redis://r:6379") || !storeopen.IsCluster("rediss+cluster://r:6380") {
		t.Error("IsCluster")
	}
}

// TestOpenCluster: a redis+cluster:// URL opens the store on a cluster
// client, whose writes land on the three primaries.
func TestOpenCluster(t *testing.T) {
	r := clustertest.RedisCluster(t)
	ctx := context.Background()
	cfg := config.Store{URL: r.URL, SeenTTL: time.Hour}
	cfg.Namespace = testns.New(t)
	st, closeStore, err := storeopen.Open(ctx, cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer closeStore()
	for i := range 30 {
		iccid := "8901" + string(rune('a'+i))
		if _, err := st.UpdateProfile(ctx, iccid, func(p *store.Profile) (bool, error) { p.Status = "IN_USE"; return true, nil }); err != nil {
			t.Fatal(err)
		}
	}
	c := r.Client()
	defer c.Close()
	// ForEachMaster calls the function concurrently, one goroutine per
	// primary.
	var holding atomic.Int32
	err = c.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
		if m.DBSize(ctx).Val() > 0 {
			holding.Add(1)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := holding.Load(); n != 3 {
		t.Errorf("%d of 3 primaries hold keys: not a cluster client", n)
	}
}

// TestOpenKVReplicated: with no Redis on a NATS cluster, the KV store's
// buckets take ESIMFLOW_STREAM_REPLICAS, as the streams do.
func TestOpenKVReplicated(t *testing.T) {
	n := clustertest.NATSCluster(t)
	env := map[string]string{"ESIMFLOW_NATS_URL": n.URL, "ESIMFLOW_STREAM_REPLICAS": "3", "ESIMFLOW_NAMESPACE": testns.New(t)}
	cfg, err := config.Load(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(n.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	_, closeStore, err := storeopen.Open(ctx, cfg.Store, js)
	if err != nil {
		t.Fatal(err)
	}
	defer closeStore()
	state, seen := kvstore.Buckets(cfg.Namespace)
	for _, b := range []string{state, seen} {
		kv, err := js.KeyValue(ctx, b)
		if err != nil {
			t.Fatal(err)
		}
		st, err := kv.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if r := st.(*jetstream.KeyValueBucketStatus).StreamInfo().Config.Replicas; r != 3 {
			t.Errorf("bucket %s has %d replicas, want 3", b, r)
		}
	}
}
