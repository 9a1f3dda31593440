package chaos

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/esimflow/esimflow/shared/store/redisstore"
	"github.com/redis/go-redis/v9"
)

// Fault kinds.
const (
	FaultKill      = "kill-9"
	FaultStop      = "sigstop"
	FaultNATS      = "nats-restart"
	FaultRedis     = "redis-restart"
	FaultBad       = "bad-requests"
	FaultWipeSeen  = "wipe-seen-set"
	FaultFailpoint = "failpoint" // counted from the exits, not scheduled
)

// fault is one scheduled fault.
type fault struct {
	at   time.Duration
	kind string
}

// schedule lays out faults over the first 80 % of the load: every kind at
// least once, the rest drawn at random, the seen-set wiped once mid-run.
func schedule(rng *rand.Rand, d time.Duration) []fault {
	return spread(rng, d, 6, []string{FaultKill, FaultStop, FaultNATS, FaultRedis, FaultBad},
		[]string{FaultKill, FaultKill, FaultKill, FaultKill, FaultStop, FaultStop, FaultNATS, FaultRedis, FaultBad, FaultBad})
}

// spread lays out faults over the first 80 % of a run of d, at least atLeast
// of them: each of kinds once, the rest drawn from weighted, each at an even
// step with a random lag, the seen-set wiped once mid-run.
func spread(rng *rand.Rand, d time.Duration, atLeast int, kinds, weighted []string) []fault {
	end := d * 8 / 10
	every := min(max(d/12, 3*time.Second), 10*time.Second)
	n := max(int(end/every), atLeast)
	for len(kinds) < n-1 {
		kinds = append(kinds, weighted[rng.IntN(len(weighted))])
	}
	rng.Shuffle(len(kinds), func(i, j int) { kinds[i], kinds[j] = kinds[j], kinds[i] })
	var out []fault
	for i, k := range kinds {
		at := time.Duration(i+1) * end / time.Duration(len(kinds)+1)
		at += time.Duration(rng.Int64N(int64(every) / 3))
		out = append(out, fault{at: at, kind: k})
	}
	out = append(out, fault{at: d / 2, kind: FaultWipeSeen})
	sort.Slice(out, func(i, j int) bool { return out[i].at < out[j].at })
	return out
}

// injector runs a schedule against a cluster.
type injector struct {
	c        *cluster
	rng      *rand.Rand
	p        *provider
	stopFor  time.Duration // how long SIGSTOP lasts
	mu       sync.Mutex
	counts   map[string]int
	log      []string
	bad      []*Sent
	stopping sync.WaitGroup
}

func (in *injector) count(kind, what string, start time.Time) {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.counts[kind]++
	in.log = append(in.log, fmt.Sprintf("%6.1fs %-14s %s", time.Since(start).Seconds(), kind, what))
}

// run injects each fault at its time; it returns when the schedule is done
// and every stopped process has been continued.
func (in *injector) run(ctx context.Context, faults []fault) {
	start := time.Now()
	for i, f := range faults {
		select {
		case <-ctx.Done():
			in.stopping.Wait()
			return
		case <-time.After(time.Until(start.Add(f.at))):
		}
		in.inject(ctx, f.kind, i, start)
	}
	in.stopping.Wait()
}

func (in *injector) inject(ctx context.Context, kind string, i int, start time.Time) {
	switch kind {
	case FaultKill:
		p := in.pick()
		if p == nil {
			return
		}
		p.signal(syscall.SIGKILL)
		in.count(kind, p.name, start)
	case FaultStop:
		p := in.pick()
		if p == nil {
			return
		}
		p.signal(syscall.SIGSTOP)
		in.count(kind, fmt.Sprintf("%s for %v", p.name, in.stopFor), start)
		in.stopping.Go(func() {
			select {
			case <-ctx.Done():
			case <-time.After(in.stopFor):
			}
			p.signal(syscall.SIGCONT)
		})
	case FaultNATS:
		down := time.Duration(500+in.rng.IntN(2500)) * time.Millisecond
		how := "SIGTERM"
		if in.c.natsKill == syscall.SIGKILL {
			how = "SIGKILL"
		}
		in.count(kind, fmt.Sprintf("%s, down %v", how, down), start)
		if err := in.c.restartInfra(ctx, "nats", in.c.natsKill, down); err != nil {
			in.c.log.Error("nats restart", "err", err)
		}
	case FaultRedis:
		down := time.Duration(500+in.rng.IntN(2500)) * time.Millisecond
		in.count(kind, fmt.Sprintf("SIGKILL, down %v", down), start)
		if err := in.c.restartInfra(ctx, "redis", syscall.SIGKILL, down); err != nil {
			in.c.log.Error("redis restart", "err", err)
		}
	case FaultBad:
		bad := in.p.badBurst(ctx, in.rng, 20, fmt.Sprintf("%d", i))
		in.mu.Lock()
		in.bad = append(in.bad, bad...)
		in.mu.Unlock()
		in.count(kind, "20 requests", start)
	case FaultWipeSeen:
		n, err := wipeSeen(ctx, in.c.redisURL)
		if err != nil {
			in.c.log.Error("wipe seen-set", "err", err)
		}
		in.count(kind, fmt.Sprintf("%d keys", n), start)
	default:
		in.injectCluster(ctx, kind, start)
	}
}

// pick returns a random running, not stopped, service process.
func (in *injector) pick() *proc {
	var cands []*proc
	for _, p := range in.c.services() {
		if _, stopped, ok := p.running(); ok && !stopped {
			cands = append(cands, p)
		}
	}
	if len(cands) == 0 {
		return nil
	}
	return cands[in.rng.IntN(len(cands))]
}

// wipeSeen deletes the processor's seen-set: dedupe is a fast path only, so
// the outcome must not change. On a Redis Cluster it scans every primary.
func wipeSeen(ctx context.Context, url string) (int, error) {
	rdb, err := redisClient(url)
	if err != nil {
		return 0, err
	}
	defer rdb.Close()
	var n atomic.Int64
	wipe := func(ctx context.Context, node redis.Cmdable) error {
		iter := node.Scan(ctx, 0, redisstore.Prefix("")+"{s:*", 1000).Iterator()
		for iter.Next(ctx) {
			// One key a command: keys of a scan may hash to different slots.
			if err := node.Del(ctx, iter.Val()).Err(); err != nil {
				return fmt.Errorf("delete seen keys: %w", err)
			}
			n.Add(1)
		}
		if err := iter.Err(); err != nil {
			return fmt.Errorf("scan seen keys: %w", err)
		}
		return nil
	}
	if cc, ok := rdb.(*redis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error { return wipe(ctx, m) })
	} else {
		err = wipe(ctx, rdb)
	}
	return int(n.Load()), err
}

// summary lists the faults by kind.
func (in *injector) summary() map[string]int {
	in.mu.Lock()
	defer in.mu.Unlock()
	out := map[string]int{}
	for k, v := range in.counts {
		out[k] = v
	}
	return out
}

func (in *injector) timeline() string {
	in.mu.Lock()
	defer in.mu.Unlock()
	return strings.Join(in.log, "\n")
}
