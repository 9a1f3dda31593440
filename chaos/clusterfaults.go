package chaos

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"syscall"
	"time"

	"github.com/esimflow/esimflow/processor"
	"github.com/esimflow/esimflow/shared/clustertest"
	"github.com/esimflow/esimflow/shared/store/redisstore"
	"github.com/esimflow/esimflow/shared/stream"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
)

// The faults of a -cluster run, on top of the services' kill -9, SIGSTOP and
// bad requests.
const (
	FaultLeaderKill   = "nats-leader-kill-9"   // the ESIM_EVENTS leader's node, restarted after a while
	FaultFollowerKill = "nats-follower-kill-9" // a node that does not lead ESIM_EVENTS
	FaultPrimaryKill  = "redis-primary-kill-9" // its replica promoted, then it rejoins as a replica
	FaultIsolate      = "nats-isolate"         // a node SIGSTOPped: its routes and clients hear nothing, then SIGCONT
	FaultRolling      = "nats-rolling-restart" // every node in turn, each back in step before the next
)

// clusterSchedule lays out the faults of a -cluster run over the first 80 %
// of the load, as schedule does: every kind at least once, the rest drawn at
// random, the seen-set wiped once mid-run.
func clusterSchedule(rng *rand.Rand, d time.Duration) []fault {
	return spread(rng, d, 9,
		[]string{FaultLeaderKill, FaultFollowerKill, FaultPrimaryKill, FaultIsolate, FaultRolling, FaultKill, FaultStop, FaultBad},
		[]string{FaultLeaderKill, FaultLeaderKill, FaultFollowerKill, FaultPrimaryKill, FaultPrimaryKill, FaultIsolate,
			FaultKill, FaultKill, FaultStop, FaultBad})
}

// settleLimit bounds the wait for a cluster to be whole again after a fault.
const settleLimit = time.Minute

// injectCluster injects one of the cluster faults. It holds infraDown until
// the cluster is whole again: a service killed meanwhile restarts after it,
// as after a NATS or Redis restart (a service whose start-up meets an
// election waits, but the run would count an exit there as a crash).
func (in *injector) injectCluster(ctx context.Context, kind string, start time.Time) {
	c := in.c
	c.infraDown.Lock()
	defer c.infraDown.Unlock()
	var err error
	switch kind {
	case FaultLeaderKill, FaultFollowerKill:
		var p *proc
		if p, err = in.natsVictim(ctx, kind == FaultLeaderKill); err != nil {
			break
		}
		down := time.Duration(500+in.rng.IntN(2500)) * time.Millisecond
		in.count(kind, fmt.Sprintf("%s (%s), down %v", p.name, c.natsServerName(p), down), start)
		if err = c.restartInfraHeld(ctx, p.name, syscall.SIGKILL, down); err == nil {
			err = c.natsInStep(ctx)
		}
	case FaultPrimaryKill:
		err = in.killPrimary(ctx, start)
	case FaultIsolate:
		nodes := c.roleProcs("nats")
		p := nodes[in.rng.IntN(len(nodes))]
		isolateFor := min(in.stopFor, 20*time.Second)
		in.count(kind, fmt.Sprintf("%s (%s) stopped for %v", p.name, c.natsServerName(p), isolateFor), start)
		p.signal(syscall.SIGSTOP)
		select {
		case <-ctx.Done():
		case <-time.After(isolateFor):
		}
		p.signal(syscall.SIGCONT)
		err = c.natsInStep(ctx)
	case FaultRolling:
		var names []string
		for _, p := range c.roleProcs("nats") {
			names = append(names, p.name)
		}
		in.count(kind, strings.Join(names, ", "), start)
		for _, name := range names {
			if err = c.restartInfraHeld(ctx, name, c.natsKill, time.Second); err != nil {
				break
			}
			if err = c.natsInStep(ctx); err != nil {
				break
			}
		}
	default:
		err = fmt.Errorf("unknown fault %q", kind)
	}
	if err != nil && ctx.Err() == nil {
		c.log.Error("cluster fault", "fault", kind, "err", err)
	}
}

// natsVictim returns the node that leads ESIM_EVENTS (leader) or one that
// does not.
func (in *injector) natsVictim(ctx context.Context, leader bool) (*proc, error) {
	c := in.c
	name, err := c.eventsLeader(ctx)
	if err != nil {
		return nil, err
	}
	lead, ok := c.natsNode[name]
	if !ok {
		return nil, fmt.Errorf("leader %q is no node of the run", name)
	}
	if leader {
		return lead, nil
	}
	var others []*proc
	for _, p := range c.roleProcs("nats") {
		if p != lead {
			others = append(others, p)
		}
	}
	return others[in.rng.IntN(len(others))], nil
}

// eventsLeader returns the server name of ESIM_EVENTS's leader, waiting for
// one to be elected.
func (c *cluster) eventsLeader(ctx context.Context) (string, error) {
	var name string
	err := c.withJetStream(ctx, func(ctx context.Context, js jetstream.JetStream) error {
		var err error
		name, err = clustertest.StreamLeader(ctx, js, stream.NewNames("").Stream(stream.Events))
		return err
	})
	return name, err
}

// natsInStep waits until ESIM_EVENTS and ESIM_NOTIFY each have a leader and
// two current replicas: the cluster is whole again.
func (c *cluster) natsInStep(ctx context.Context) error {
	names := stream.NewNames("")
	return c.withJetStream(ctx, func(ctx context.Context, js jetstream.JetStream) error {
		for _, s := range []string{names.Stream(stream.Events), names.Stream(stream.Notify)} {
			st, err := js.Stream(ctx, s)
			if err != nil {
				return err
			}
			info, err := st.Info(ctx)
			if err != nil {
				return err
			}
			cl := info.Cluster
			if cl == nil || cl.Leader == "" || len(cl.Replicas) != 2 || !cl.Replicas[0].Current || !cl.Replicas[1].Current {
				return fmt.Errorf("%s not in step: %+v", s, cl)
			}
		}
		return nil
	})
}

// withJetStream calls f with a JetStream context on the run's NATS until it
// succeeds or settleLimit passes.
func (c *cluster) withJetStream(ctx context.Context, f func(context.Context, jetstream.JetStream) error) error {
	ctx, cancel := context.WithTimeout(ctx, settleLimit)
	defer cancel()
	nc, err := nats.Connect(c.natsURL, nats.Timeout(2*time.Second), nats.MaxReconnects(-1), nats.RetryOnFailedConnect(true))
	if err != nil {
		return fmt.Errorf("connect to nats: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	for {
		rctx, rcancel := context.WithTimeout(ctx, 3*time.Second)
		err = f(rctx, js)
		rcancel()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// killPrimary kills a random Redis primary with -9, waits until its replica
// has taken over, starts it again (it rejoins as a replica) and waits until
// it is in sync. Then it does what docs/operations.md tells an operator to
// do after a failover: replay the events stored since shortly before it,
// since writes the primary acknowledged and had not replicated are gone.
func (in *injector) killPrimary(ctx context.Context, start time.Time) error {
	c := in.c
	var primaries []*proc
	for _, p := range c.roleProcs("redis") {
		if isPrimary(ctx, p.addrs[0]) {
			primaries = append(primaries, p)
		}
	}
	if len(primaries) == 0 {
		return errors.New("no Redis primary answers")
	}
	p := primaries[in.rng.IntN(len(primaries))]
	killed := time.Now()
	p.stop(syscall.SIGKILL, 0)
	wctx, cancel := context.WithTimeout(ctx, settleLimit)
	defer cancel()
	var live []string
	for _, q := range c.roleProcs("redis") {
		if q != p {
			live = append(live, q.addrs[0])
		}
	}
	// Its replica promoted: every slot served by a live primary.
	if err := clustertest.WaitRedisCluster(wctx, live); err != nil {
		return fmt.Errorf("after killing %s: %w", p.name, err)
	}
	if err := c.startInfra(ctx, p); err != nil {
		return err
	}
	if err := clustertest.WaitRedisCluster(wctx, c.redisAddrs()); err != nil {
		return fmt.Errorf("%s rejoining: %w", p.name, err)
	}
	stats, err := c.replaySince(ctx, killed.Add(-replayMargin))
	in.count(FaultPrimaryKill, fmt.Sprintf("%s; failover %v; replayed %d events", p.name, time.Since(killed).Round(time.Millisecond), stats.Events), start)
	return err
}

// replayMargin is how far before a Redis failover the replay starts: past
// any write the dead primary can have acknowledged without replicating.
const replayMargin = time.Minute

// replaySince merges every event stored since from into the store again,
// as `esimflow replay --since` does.
func (c *cluster) replaySince(ctx context.Context, from time.Time) (processor.ReplayStats, error) {
	rdb, err := redisClient(c.redisURL)
	if err != nil {
		return processor.ReplayStats{}, err
	}
	defer rdb.Close()
	st, err := redisstore.New(rdb, redisstore.Options{SeenTTL: seenTTL})
	if err != nil {
		return processor.ReplayStats{}, err
	}
	var stats processor.ReplayStats
	err = c.withJetStream(ctx, func(ctx context.Context, js jetstream.JetStream) error {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), settleLimit)
		defer cancel()
		stats, err = processor.Replay(rctx, js, stream.NewNames(""), st, processor.ReplayOptions{Since: from, SeenTTL: seenTTL})
		return err
	})
	return stats, err
}

// seenTTL is the services' ESIMFLOW_SEEN_TTL (its default).
const seenTTL = 168 * time.Hour

// isPrimary reports whether the Redis node at addr says it is a primary.
func isPrimary(ctx context.Context, addr string) bool {
	c := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: time.Second, ReadTimeout: time.Second})
	defer c.Close()
	role, err := c.Do(ctx, "ROLE").Slice()
	return err == nil && len(role) > 0 && role[0] == "master"
}
