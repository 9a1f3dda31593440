package processor_test

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/esimflow/esimflow/processor"
	"github.com/esimflow/esimflow/shared/clustertest"
	"github.com/esimflow/esimflow/shared/poll"
	"github.com/esimflow/esimflow/shared/store/redisstore"
	"github.com/redis/go-redis/v9"
)

// TestReplayAfterRedisFailover: Redis Cluster replicates asynchronously, so
// state a primary acknowledged and had not yet passed to its replica is lost
// when the primary dies and the replica takes over. The events behind that
// state are in ESIM_EVENTS, acknowledged by the processor only after the
// write; a replay rebuilds it.
//
// The test kills one primary's replica with -9 while the second half of the
// events is processed, so the primary acknowledges writes no replica has;
// then kills the primary with -9 and starts the replica again, which is
// promoted with what it had (cluster-replica-validity-factor 0: a replica
// promotes however stale, as one that merely lagged would). The state read
// back then misses writes, and after processor.Replay equals what the
// processor had stored, byte for byte.
//
// (A SIGSTOPped replica would not do: the primary's stream waits in its
// socket buffer and is applied when it is continued.)
func TestReplayAfterRedisFailover(t *testing.T) {
	rc := clustertest.RedisCluster(t)
	r := newRig(t, rigOpts{})
	client := rc.Client()
	t.Cleanup(func() { _ = client.Close() })
	st, err := redisstore.New(client, redisstore.Options{Namespace: r.ns, SeenTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	// The first half, stored on primaries and replicas alike.
	in := r.start(t, st, instOpts{})
	bodies := lifecycles(rand.New(rand.NewPCG(20, 1)), 60, true)
	half := len(bodies) / 2
	for _, b := range bodies[:half] {
		r.publish(t, b, true)
	}
	poll.Until(t, "the first half processed", func() bool { return r.quiet(t) })
	first := snapshot(t, client, r.ns)
	var victimKey string
	for k := range first {
		victimKey = k
		break
	}
	primary, err := rc.PrimaryOf(ctx, victimKey)
	if err != nil {
		t.Fatal(err)
	}
	replica, err := rc.ReplicaOf(ctx, primary)
	if err != nil {
		t.Fatal(err)
	}
	// Wait until the replica has all of it.
	if err := clustertest.WaitRedisCluster(ctx, rc.Addrs()); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, "the replica in step", func() bool { return inStep(ctx, primary, replica) })

	// The second half, while the replica is down: acknowledged by the
	// primary only.
	replica.Kill()
	for _, b := range bodies[half:] {
		r.publish(t, b, true)
	}
	poll.Until(t, "the second half processed", func() bool { return r.quiet(t) })
	in.stop()
	acked := snapshot(t, client, r.ns)

	// The primary dies; its replica comes back and takes over without the
	// writes.
	primary.Kill()
	replica.Args = append(replica.Args, "--cluster-replica-validity-factor", "0")
	if err := rc.Restart(ctx, replica); err != nil {
		t.Fatal(err)
	}
	t.Logf("replica %s down while the second half was stored; primary %s killed", replica.Name, primary.Name)
	poll.Until(t, "the replica promoted", func() bool { return clustertest.IsPrimary(ctx, replica) })
	var after map[string]string
	poll.Until(t, "every slot served again", func() bool {
		after, err = readState(ctx, client, r.ns)
		return err == nil && clustertest.WaitRedisCluster(ctx, liveAddrs(rc)) == nil
	})
	lost := 0
	for k, v := range acked {
		if after[k] != v {
			lost++
		}
	}
	if lost == 0 {
		t.Fatalf("no acknowledged write lost in the failover: the test shows nothing (%d keys)", len(acked))
	}
	t.Logf("%d of %d orders and profiles lost or stale after the failover", lost, len(acked))

	// The replay brings them back.
	stats, err := processor.Replay(ctx, r.js, r.names, st, processor.ReplayOptions{SeenTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	if got := snapshot(t, client, r.ns); !maps.Equal(got, acked) {
		for k, v := range acked {
			if got[k] != v {
				t.Errorf("%s after replay:\n got %s\nwant %s", k, got[k], v)
			}
		}
		t.Fatalf("state after replay differs (%+v)", stats)
	}
}

// inStep reports whether the replica's replication offset has reached the
// primary's.
func inStep(ctx context.Context, primary, replica *clustertest.Process) bool {
	p, err1 := replOffset(ctx, primary.Addr, "master_repl_offset")
	r, err2 := replOffset(ctx, replica.Addr, "slave_repl_offset")
	return err1 == nil && err2 == nil && r >= p
}

// replOffset reads one field of the node's INFO replication.
func replOffset(ctx context.Context, addr, field string) (int64, error) {
	c := redis.NewClient(&redis.Options{Addr: addr})
	defer c.Close()
	info, err := c.Info(ctx, "replication").Result()
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(info, "\r\n") {
		if v, ok := strings.CutPrefix(line, field+":"); ok {
			return strconv.ParseInt(v, 10, 64)
		}
	}
	return 0, fmt.Errorf("%s: no %s", addr, field)
}

// liveAddrs returns the addresses of the nodes running.
func liveAddrs(rc *clustertest.Redis) []string {
	var out []string
	for _, p := range rc.Nodes {
		if p.Running() {
			out = append(out, p.Addr)
		}
	}
	return out
}
