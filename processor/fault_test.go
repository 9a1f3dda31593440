package processor_test

import (
	"context"
	"math/rand/v2"
	"net"
	"os/exec"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/esimflow/esimflow/processor"
	"github.com/esimflow/esimflow/shared/poll"
	"github.com/esimflow/esimflow/shared/store"
	"github.com/esimflow/esimflow/shared/stream"
	"github.com/redis/go-redis/v9"
)

const redisServerBin = "/usr/bin/redis-server"

// redisServer is a redis-server of the test's own, on a free port with its
// data in a temporary directory: a server the test may stop, never the shared one.
type redisServer struct {
	t     testing.TB
	port  int
	dir   string
	extra []string // more server arguments
	cmd   *exec.Cmd
}

func startRedisServer(t testing.TB, extra ...string) *redisServer {
	t.Helper()
	if _, err := exec.LookPath(redisServerBin); err != nil {
		t.Skipf("%s not installed", redisServerBin)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	s := &redisServer{t: t, port: port, dir: t.TempDir(), extra: extra}
	s.start()
	t.Cleanup(s.kill)
	return s
}

func (s *redisServer) url() string { return "redis://127.0.0.1:" + strconv.Itoa(s.port) }

// start runs the server on its port and directory; every write is fsynced to
// the append-only file, so a killed server loses nothing it acknowledged.
func (s *redisServer) start() {
	s.t.Helper()
	args := append([]string{"--port", strconv.Itoa(s.port), "--bind", "127.0.0.1", "--dir", s.dir,
		"--appendonly", "yes", "--appendfsync", "always", "--save", "", "--maxmemory-policy", "noeviction"}, s.extra...)
	s.cmd = exec.Command(redisServerBin, args...)
	if err := s.cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	c := redis.NewClient(&redis.Options{Addr: "127.0.0.1:" + strconv.Itoa(s.port)})
	defer c.Close()
	poll.Until(s.t, "redis-server up", func() bool { return c.Ping(context.Background()).Err() == nil })
}

// kill stops the server at once (SIGKILL), as a crash would.
func (s *redisServer) kill() {
	if s.cmd == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}

// TestRedisOutage stops Redis in the middle of a stream of events and starts
// it again: readiness goes false then true, nothing is dead-lettered, and in
// the end the state equals the oracle's and each intent was published once.
func TestRedisOutage(t *testing.T) {
	for _, loop := range loops {
		t.Run(loop.name, func(t *testing.T) { testRedisOutage(t, loop.opts) })
	}
}

func testRedisOutage(t *testing.T, o instOpts) {
	rs := startRedisServer(t)
	r := newRig(t, rigOpts{})
	st, _ := r.redisStore(t, rs.url())
	in := r.start(t, st, o)
	bodies := lifecycles(rand.New(rand.NewPCG(3, 4)), 60, true)
	half := len(bodies) / 2
	for _, b := range bodies[:half] {
		r.publish(t, b, false)
	}
	poll.Until(t, "some events applied", func() bool { return processedAs(in, "applied") > 0 })
	if !in.ready(t) {
		t.Fatal("not ready with Redis up")
	}

	rs.kill()
	poll.Until(t, "readiness false", func() bool { return !in.ready(t) })
	for _, b := range bodies[half:] {
		r.publish(t, b, false)
	}
	// Let the outage bite: events are being held, none is lost or dead.
	poll.Until(t, "events held", func() bool {
		return processedAs(in, "applied")+processedAs(in, "duplicate") < len(bodies) && !in.ready(t)
	})

	rs.start()
	poll.Until(t, "readiness true", func() bool { return in.ready(t) })
	poll.Until(t, "all processed", func() bool { return r.quiet(t) }, poll.Timeout(60*time.Second))
	if n := len(r.streamMsgs(t, stream.DLQ)); n != 0 {
		t.Errorf("%d dead letters from a store outage", n)
	}
	newOracle(t, r).check(t, r, st)
}

// crashingStore lets an instance "die" — its NATS connection closed, so
// nothing more it publishes or acks gets out — right after a chosen store
// write succeeded: of a profile, one at a time or in a batch's state write,
// or of a seen mark, one or a batch's.
type crashingStore struct {
	processor.Store
	afterProfile, afterSeen bool
	crash                   func()
	crashed                 atomic.Bool
	once                    sync.Once
}

func (c *crashingStore) die() { c.once.Do(func() { c.crash(); c.crashed.Store(true) }) }

func (c *crashingStore) UpdateProfile(ctx context.Context, iccid string, fn func(*store.Profile) (bool, error)) (store.Profile, error) {
	p, err := c.Store.UpdateProfile(ctx, iccid, fn)
	if err == nil && c.afterProfile {
		c.die()
	}
	return p, err
}

func (c *crashingStore) WriteState(ctx context.Context, snap *store.Snapshot, orderNos, iccids []string) (store.Lost, error) {
	lost, err := c.Store.WriteState(ctx, snap, orderNos, iccids)
	if err == nil && c.afterProfile && len(iccids) > 0 {
		c.die()
	}
	return lost, err
}

func (c *crashingStore) MarkSeen(ctx context.Context, key string) error {
	err := c.Store.MarkSeen(ctx, key)
	if err == nil && c.afterSeen {
		c.die()
	}
	return err
}

func (c *crashingStore) MarkSeenMany(ctx context.Context, keys []string) error {
	err := c.Store.MarkSeenMany(ctx, keys)
	if err == nil && c.afterSeen && len(keys) > 0 {
		c.die()
	}
	return err
}

// TestCrashBeforeAck: an instance dies after a store write and before its
// ack; the event is redelivered to another instance and the outcome is the
// same as without the crash: same state, the intent published once.
func TestCrashBeforeAck(t *testing.T) {
	for _, tc := range []struct {
		name                    string
		afterProfile, afterSeen bool
	}{
		{"after the state write, before the intent", true, false},
		{"after the seen mark, before the ack", false, true},
	} {
		for _, loop := range loops {
			t.Run(tc.name+"/"+loop.name, func(t *testing.T) { testCrash(t, tc.afterProfile, tc.afterSeen, loop.opts) })
		}
	}
}

func testCrash(t *testing.T, afterProfile, afterSeen bool, o instOpts) {
	r := newRig(t, rigOpts{})
	// A short AckWait: the dead instance's event comes back in a second.
	cfg := r.names.ConsumerConfig(stream.ProcessorConsumer, r.limits())
	cfg.AckWait = time.Second
	if _, err := r.js.CreateOrUpdateConsumer(context.Background(), r.names.Stream(stream.Events), cfg); err != nil {
		t.Fatal(err)
	}
	st := r.kvStore(t)
	crashing := &crashingStore{Store: st, afterProfile: afterProfile, afterSeen: afterSeen}
	o.workers = 1
	dying := r.start(t, crashing, o)
	crashing.crash = dying.nc.Close
	body := `{"eventType":"PROFILE_STATUS","iccid":"8903","orderNo":"O","currentStatus":"ACTIVATED","timestamp":"2024-01-15T14:00:00Z"}`
	r.publish(t, body, true)
	poll.Until(t, "the crash", crashing.crashed.Load)

	survivor := r.start(t, st, instOpts{})
	poll.Until(t, "the event handled by the survivor", func() bool { return r.quiet(t) })
	outcome := "applied"
	if afterSeen {
		outcome = "duplicate"
	}
	if n := processedAs(survivor, outcome); n != 1 {
		t.Errorf("survivor: %d %s, want 1", n, outcome)
	}
	newOracle(t, r).check(t, r, st)
}
