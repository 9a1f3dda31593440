package chaos

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"time"

	"github.com/esimflow/esimflow/shared/clustertest"
)

// The clustered infrastructure of a -cluster run: a three-node JetStream
// cluster and a Redis Cluster of three primaries with one replica each, as
// clustertest lays them out, each node a proc the supervisor runs, kills and
// restarts like any other.

// addNATSCluster adds nats-1…3, their stores in dir/nats/<server name>.
func (c *cluster) addNATSCluster(spec clusterSpec) error {
	nodes, err := clustertest.NATSNodes(clustertest.NATSOptions{Bin: spec.bins.NATS, Dir: filepath.Join(spec.dir, "nats"),
		Ports: c.ports, SyncAlways: spec.syncAlways})
	if err != nil {
		return err
	}
	c.natsURL = clustertest.URLs(nodes)
	c.natsNode = map[string]*proc{}
	for i, n := range nodes {
		p := &proc{name: fmt.Sprintf("nats-%d", i+1), role: "nats", bin: n.Bin, args: n.Args, addrs: []string{n.Addr}}
		c.add(p)
		c.natsNode[n.Name] = p
	}
	return nil
}

// addRedisCluster adds redis-1…6, each in dir/redis/<node>; formClusters
// joins them.
func (c *cluster) addRedisCluster(spec clusterSpec) error {
	c.redisCLI = spec.bins.RedisCLI
	if c.redisCLI == "" {
		c.redisCLI = filepath.Join(filepath.Dir(spec.bins.Redis), "redis-cli")
	}
	nodes, err := clustertest.RedisNodes(clustertest.RedisOptions{Bin: spec.bins.Redis, Dir: filepath.Join(spec.dir, "redis"), Ports: c.ports})
	if err != nil {
		return err
	}
	var addrs []string
	for i, n := range nodes {
		c.add(&proc{name: fmt.Sprintf("redis-%d", i+1), role: "redis", bin: n.Bin, args: n.Args, addrs: []string{n.Addr}})
		addrs = append(addrs, n.Addr)
	}
	c.redisURL = clustertest.ClusterURL(addrs)
	return nil
}

// formClusters joins the Redis nodes into a cluster and waits until
// JetStream has its meta leader.
func (c *cluster) formClusters(ctx context.Context) error {
	fctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if err := clustertest.FormRedisCluster(fctx, c.redisCLI, c.redisAddrs()); err != nil {
		return err
	}
	return clustertest.WaitJetStream(fctx, c.natsURL)
}

// redisAddrs returns every Redis node's address.
func (c *cluster) redisAddrs() []string {
	var out []string
	for _, p := range c.infra() {
		if p.role == "redis" {
			out = append(out, p.addrs[0])
		}
	}
	return out
}

// roleProcs returns the processes of a role, in order.
func (c *cluster) roleProcs(role string) []*proc {
	var out []*proc
	for _, p := range c.procs {
		if p.role == role {
			out = append(out, p)
		}
	}
	return out
}

// natsServerName returns the server_name of a NATS node's process.
func (c *cluster) natsServerName(p *proc) string {
	for name, q := range c.natsNode {
		if q == p {
			return name
		}
	}
	return strings.TrimPrefix(p.name, "nats-")
}
