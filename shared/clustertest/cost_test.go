package clustertest_test

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/esimflow/esimflow/shared/clustertest"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// TestReplicationCost measures, for docs/capacity.md, what R3 costs the NATS
// servers against R1: the CPU of all three nats-server processes per stored
// message, and the rate, for 20 000 messages of 180 bytes published with 256
// PubAcks outstanding. It runs with ESIMFLOW_TEST_FOOTPRINT=1 and logs the
// figures (go test -v).
func TestReplicationCost(t *testing.T) {
	if os.Getenv("ESIMFLOW_TEST_FOOTPRINT") == "" {
		t.Skip("ESIMFLOW_TEST_FOOTPRINT unset: the measurements of docs/capacity.md")
	}
	n := clustertest.NATSCluster(t)
	nc, err := nats.Connect(n.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncMaxPending(256))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	body := []byte(strings.Repeat("x", 180))
	const msgs = 20_000
	for _, replicas := range []int{1, 3} {
		name := "COST_R" + strconv.Itoa(replicas)
		if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: name, Subjects: []string{name}, Replicas: replicas, Storage: jetstream.FileStorage}); err != nil {
			t.Fatal(err)
		}
		cpu0 := serversCPU(t, n)
		start := time.Now()
		for i := range msgs {
			if _, err := js.PublishAsync(name, body, jetstream.WithMsgID(name+strconv.Itoa(i)), jetstream.WithStallWait(time.Minute)); err != nil {
				t.Fatal(err)
			}
		}
		select {
		case <-js.PublishAsyncComplete():
		case <-time.After(2 * time.Minute):
			t.Fatal("PubAcks not all back")
		}
		took := time.Since(start)
		cpu := serversCPU(t, n) - cpu0
		t.Logf("R%d: %.0f msg/s, nats-server CPU %.1f µs per message (all three servers)", replicas,
			msgs/took.Seconds(), float64(cpu.Microseconds())/msgs)
	}
}

// serversCPU sums the user and system time of the cluster's servers.
func serversCPU(t *testing.T, n *clustertest.NATS) time.Duration {
	t.Helper()
	var total time.Duration
	for _, p := range n.Nodes {
		total += p.CPU()
	}
	return total
}
