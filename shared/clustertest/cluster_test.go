package clustertest_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/esimflow/esimflow/shared/clustertest"
	"github.com/esimflow/esimflow/shared/poll"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestNATSCluster: three nodes, one JetStream cluster: an R3 stream has a
// leader and two current replicas, and a write is on all three.
func TestNATSCluster(t *testing.T) {
	n := clustertest.NATSCluster(t)
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
	s, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}, Replicas: 3, Storage: jetstream.FileStorage})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, "t.1", []byte("x")); err != nil {
		t.Fatal(err)
	}
	leader, err := clustertest.StreamLeader(ctx, js, "T")
	if err != nil {
		t.Fatal(err)
	}
	if n.Node(leader) == nil {
		t.Fatalf("leader %q is none of the nodes", leader)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(info.Cluster.Replicas) != 2 {
		t.Errorf("replicas %+v, want two", info.Cluster.Replicas)
	}
	if info.State.Msgs != 1 {
		t.Errorf("%d messages, want 1", info.State.Msgs)
	}
}

// TestRedisCluster: three primaries with a replica each; keys of every
// slot range are written and read through the cluster client, and a killed
// primary's replica takes over.
func TestRedisCluster(t *testing.T) {
	r := clustertest.RedisCluster(t)
	c := r.Client()
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := range 100 {
		if err := c.Set(ctx, fmt.Sprintf("k%d", i), i, 0).Err(); err != nil {
			t.Fatal(err)
		}
	}
	primaries := 0
	for _, p := range r.Nodes {
		if clustertest.IsPrimary(ctx, p) {
			primaries++
		}
	}
	if primaries != 3 {
		t.Fatalf("%d primaries, want 3", primaries)
	}
	p, err := r.PrimaryOf(ctx, "k1")
	if err != nil {
		t.Fatal(err)
	}
	replica, err := r.ReplicaOf(ctx, p)
	if err != nil {
		t.Fatal(err)
	}
	p.Kill()
	// The failover and the reads get their own deadlines: on a loaded
	// machine the writes' 30 s could run out while the replica takes over,
	// and every read after it would fail with the expired context.
	ctx, cancel = context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	poll.Until(t, "replica "+replica.Name+" promoted", func() bool { return clustertest.IsPrimary(ctx, replica) })
	// The client learns the new layout from the nodes, which learn it
	// from each other: it may take a few tries.
	for i := range 100 {
		key := fmt.Sprintf("k%d", i)
		var v int
		poll.Until(t, key+" readable after the failover", func() bool {
			var err error
			v, err = c.Get(ctx, key).Int()
			return err == nil
		})
		if v != i {
			t.Fatalf("%s = %d after failover", key, v)
		}
	}
}
