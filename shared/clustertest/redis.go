package clustertest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

// Where Debian puts the Redis programs.
const (
	SystemRedis    = "/usr/bin/redis-server"
	SystemRedisCLI = "/usr/bin/redis-cli"
)

// RedisOptions describe a Redis Cluster.
type RedisOptions struct {
	// Bin is redis-server, CLI redis-cli; defaults SystemRedis, SystemRedisCLI.
	Bin, CLI string
	// Dir holds each node's directory (Dir/<name>: nodes.conf, the
	// append-only file) and log.
	Dir   string
	Ports *Ports
	// Primaries is how many primaries share the slots, each with one
	// replica; default 3.
	Primaries int
	// NodeTimeout is cluster-node-timeout: how long a primary is unreachable
	// before its replica takes over; default 2 s.
	NodeTimeout time.Duration
}

func (o *RedisOptions) defaults() {
	if o.Bin == "" {
		o.Bin = SystemRedis
	}
	if o.CLI == "" {
		o.CLI = SystemRedisCLI
	}
	if o.Primaries == 0 {
		o.Primaries = 3
	}
	if o.NodeTimeout == 0 {
		o.NodeTimeout = 2 * time.Second
	}
}

// RedisNodes returns 2×Primaries cluster-enabled redis-server nodes,
// r1…rN, each with its client port and cluster bus port from o.Ports, an
// append-only file fsynced on every write, and noeviction (esimflow's TTL'd
// keys must not be evicted). They form no cluster until FormRedisCluster.
func RedisNodes(o RedisOptions) ([]Node, error) {
	o.defaults()
	nodes := make([]Node, 2*o.Primaries)
	for i := range nodes {
		port, err := o.Ports.Take()
		if err != nil {
			return nil, err
		}
		bus, err := o.Ports.Take()
		if err != nil {
			return nil, err
		}
		name := "r" + strconv.Itoa(i+1)
		dir := filepath.Join(o.Dir, name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("redis dir: %w", err)
		}
		nodes[i] = Node{Name: name, Bin: o.Bin, Addr: "127.0.0.1:" + strconv.Itoa(port), Dir: dir, Args: []string{
			"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--protected-mode", "no",
			"--cluster-enabled", "yes", "--cluster-port", strconv.Itoa(bus),
			"--cluster-config-file", filepath.Join(dir, "nodes.conf"),
			"--cluster-node-timeout", strconv.FormatInt(o.NodeTimeout.Milliseconds(), 10),
			"--dir", dir, "--save", "", "--appendonly", "yes", "--appendfsync", "always",
			"--maxmemory-policy", "noeviction",
		}}
	}
	return nodes, nil
}

// FormRedisCluster joins the nodes at addrs into one cluster with
// redis-cli --cluster create (the first half primaries, one replica each)
// and waits until every node reports the cluster ok.
func FormRedisCluster(ctx context.Context, cli string, addrs []string) error {
	args := append(append([]string{"--cluster", "create"}, addrs...), "--cluster-replicas", "1", "--cluster-yes")
	if out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput(); err != nil {
		return fmt.Errorf("redis-cli --cluster create: %w\n%s", err, out)
	}
	return WaitRedisCluster(ctx, addrs)
}

// WaitRedisCluster waits until every node at addrs reports cluster_state:ok
// with all 16384 slots assigned, and every replica's link to its primary is
// up, or ctx ends.
func WaitRedisCluster(ctx context.Context, addrs []string) error {
	for _, a := range addrs {
		c := redis.NewClient(&redis.Options{Addr: a, MaxRetries: -1})
		var last string
		for {
			last = clusterHealth(ctx, c)
			if last == "" {
				break
			}
			select {
			case <-ctx.Done():
				_ = c.Close()
				return fmt.Errorf("redis cluster node %s: %s: %w", a, last, ctx.Err())
			case <-time.After(100 * time.Millisecond):
			}
		}
		_ = c.Close()
	}
	return nil
}

// clusterHealth returns what is wrong with one node's view, "" when nothing.
func clusterHealth(ctx context.Context, c *redis.Client) string {
	info, err := c.ClusterInfo(ctx).Result()
	if err != nil {
		return err.Error()
	}
	if !strings.Contains(info, "cluster_state:ok") || !strings.Contains(info, "cluster_slots_ok:16384") {
		return "cluster not ok"
	}
	repl, err := c.Info(ctx, "replication").Result()
	if err != nil {
		return err.Error()
	}
	if strings.Contains(repl, "role:slave") && !strings.Contains(repl, "master_link_status:up") {
		return "replica not in sync with its primary"
	}
	return ""
}

// Redis is a running Redis Cluster.
type Redis struct {
	Nodes []*Process
	// URL is the cluster as ESIMFLOW_REDIS_URL takes it:
	// redis+cluster://host:port,host:port,….
	URL string
	cli string
}

// ClusterURL returns the ESIMFLOW_REDIS_URL of a cluster whose nodes listen
// at addrs.
func ClusterURL(addrs []string) string { return "redis+cluster://" + strings.Join(addrs, ",") }

// StartRedis starts the nodes, forms the cluster and waits until it is ok.
func StartRedis(ctx context.Context, o RedisOptions) (*Redis, error) {
	o.defaults()
	nodes, err := RedisNodes(o)
	if err != nil {
		return nil, err
	}
	r := &Redis{cli: o.CLI}
	var addrs []string
	for _, n := range nodes {
		p := NewProcess(n, filepath.Join(o.Dir, n.Name+".log"))
		if err := p.Start(); err != nil {
			r.Close()
			return nil, err
		}
		r.Nodes = append(r.Nodes, p)
		addrs = append(addrs, n.Addr)
	}
	r.URL = ClusterURL(addrs)
	for _, p := range r.Nodes {
		if err := p.WaitListening(ctx); err != nil {
			r.Close()
			return nil, err
		}
	}
	if err := FormRedisCluster(ctx, o.CLI, addrs); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

// Addrs returns every node's address.
func (r *Redis) Addrs() []string {
	out := make([]string, len(r.Nodes))
	for i, p := range r.Nodes {
		out[i] = p.Addr
	}
	return out
}

// Client returns a cluster client of every node that reloads the slot
// layout every second (go-redis's default is a minute, and a refused
// connection does not make it reload); the caller closes it.
func (r *Redis) Client() *redis.ClusterClient {
	return redis.NewClusterClient(&redis.ClusterOptions{Addrs: r.Addrs(), ClusterStateReloadInterval: time.Second})
}

// PrimaryOf returns the node that serves key's slot now, as that node says.
func (r *Redis) PrimaryOf(ctx context.Context, key string) (*Process, error) {
	for _, p := range r.Nodes {
		if !p.Running() {
			continue
		}
		c := redis.NewClient(&redis.Options{Addr: p.Addr})
		role, rerr := c.Do(ctx, "ROLE").Slice()
		slot, serr := c.ClusterKeySlot(ctx, key).Result()
		var slots []redis.ClusterSlot
		if rerr == nil && serr == nil {
			slots, serr = c.ClusterSlots(ctx).Result()
		}
		_ = c.Close()
		if rerr != nil || serr != nil || len(role) == 0 || role[0] != "master" {
			continue
		}
		for _, s := range slots {
			if int64(s.Start) <= slot && slot <= int64(s.End) && len(s.Nodes) > 0 && s.Nodes[0].Addr == p.Addr {
				return p, nil
			}
		}
	}
	return nil, fmt.Errorf("no running primary serves the slot of %s", key)
}

// ReplicaOf returns a running replica of primary, as the replicas say.
func (r *Redis) ReplicaOf(ctx context.Context, primary *Process) (*Process, error) {
	_, port, _ := strings.Cut(primary.Addr, ":")
	for _, p := range r.Nodes {
		if p == primary || !p.Running() {
			continue
		}
		c := redis.NewClient(&redis.Options{Addr: p.Addr})
		info, err := c.Info(ctx, "replication").Result()
		_ = c.Close()
		if err == nil && strings.Contains(info, "role:slave") && strings.Contains(info, "master_port:"+port+"\r\n") {
			return p, nil
		}
	}
	return nil, fmt.Errorf("no running replica of %s", primary.Name)
}

// IsPrimary reports whether the node at p says it is a primary.
func IsPrimary(ctx context.Context, p *Process) bool {
	c := redis.NewClient(&redis.Options{Addr: p.Addr})
	defer c.Close()
	role, err := c.Do(ctx, "ROLE").Slice()
	return err == nil && len(role) > 0 && role[0] == "master"
}

// Restart starts a node that was killed and waits until it listens; it
// rejoins the cluster from its nodes.conf (a former primary as a replica).
func (r *Redis) Restart(ctx context.Context, p *Process) error {
	if err := p.Start(); err != nil {
		return err
	}
	return p.WaitListening(ctx)
}

// Close stops every node (SIGTERM, SIGKILL after 5 s).
func (r *Redis) Close() {
	for _, p := range r.Nodes {
		p.StopWith(syscall.SIGTERM, 5*time.Second)
	}
}
