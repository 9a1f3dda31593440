package chaos

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/esimflow/esimflow/shared/store/redisstore"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Config is one run.
type Config struct {
	// Duration is how long the load and the faults last.
	Duration time.Duration
	// Seed fixes the lifecycles, the send times and the fault schedule.
	Seed uint64
	// Server names the NATS server ("system", "newest"), Bins the programs.
	Server string
	Bins   Binaries
	// Dir holds the data directories and the logs.
	Dir string
	// ESIMs is how many lifecycles to play; 0 = 25 per second of Duration.
	ESIMs int
	// Failpoints arms failpoints and planted bugs per role (ESIMFLOW_FAILPOINTS);
	// nil = the default crash points (DefaultFailpoints).
	Failpoints map[string]string
	// Faults turns the scheduled faults on (kill, stop, restarts, bad requests, wipe).
	Faults bool
	// Cluster runs a three-node JetStream cluster (streams at R3) and a Redis
	// Cluster of three primaries with a replica each, with the cluster faults
	// (clusterfaults.go) instead of whole-server restarts.
	Cluster bool
	// StopFor is how long a SIGSTOP lasts; 0 = 35 s (past AckWait) for runs
	// of three minutes or more, a fifth of Duration for shorter ones.
	StopFor time.Duration
	// Drop is the share of webhooks the provider never sends (the
	// webhook-drop fault), drawn from the seed apart from the schedule. The
	// oracle judges what arrived, so lifecycles with gaps — usage without
	// its activation, a cancellation without its order — must still merge
	// and notify consistently; that every eSIM reaches its true final state
	// anyway needs a reconciler polling the provider (issue 17).
	Drop float64
	// MaxRSSMB bounds each service process's resident memory.
	MaxRSSMB int64
	// SettleLimit bounds the wait for quiescence after the load.
	SettleLimit time.Duration
	// Log receives progress; nil = discard.
	Log *slog.Logger
}

// DefaultFailpoints kill the processor at each of its failpoints and the
// notifier between a send and its mark, rarely enough that work goes on.
func DefaultFailpoints() map[string]string {
	return map[string]string{
		"processor": "after-store-write=0.002,after-intent-puback=0.001,after-seen-mark=0.002",
		"notifier":  "after-send=0.002",
	}
}

// Report is the outcome of a run.
type Report struct {
	Config     Config
	Elapsed    time.Duration
	ESIMs      int
	Events     int
	Dropped    int
	Load       *LoadStats
	Faults     map[string]int
	Timeline   string
	Exits      []Exit
	MaxRSSKB   map[string]int64
	Verdict    *verdict
	Violations []Violation
}

// Failed reports whether any check failed.
func (r *Report) Failed() bool { return len(r.Violations) > 0 }

// Has reports whether a check reported a violation.
func (r *Report) Has(check string) bool {
	return slices.ContainsFunc(r.Violations, func(v Violation) bool { return v.Check == check })
}

// Run starts a cluster, plays the load with faults, waits for quiescence,
// checks the oracle and stops everything, also when ctx ends early.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if cfg.Drop < 0 || cfg.Drop > 1 {
		return nil, fmt.Errorf("chaos: drop %g: want a share from 0 to 1", cfg.Drop)
	}
	cfg = cfg.withDefaults()
	rep := &Report{Config: cfg, ESIMs: cfg.ESIMs, Load: &LoadStats{}, MaxRSSKB: map[string]int64{}}
	began := time.Now()

	// The customers' side, then NATS, Redis and the services.
	sink, err := startSink()
	if err != nil {
		return nil, err
	}
	defer sink.Close()
	sec := secrets{ingestHMAC: newSecret(), notifyHMAC: newSecret()}
	c, err := newCluster(clusterSpec{dir: cfg.Dir, bins: cfg.Bins, syncAlways: cfg.Server == "newest", sink: sink, secrets: sec,
		failpoints: cfg.Failpoints, ingest: 2, processors: 3, notifiers: 2, log: cfg.Log, clustered: cfg.Cluster})
	if err != nil {
		return nil, err
	}
	defer c.close()
	cfg.Log.Info("starting cluster", "server", cfg.Server, "clustered", cfg.Cluster, "dir", cfg.Dir)
	if err := c.start(ctx); err != nil {
		return nil, err
	}
	stopSampling := sampleMemory(ctx, c.procs)
	defer stopSampling()

	// The provider's customers, registered before their orders (the checkout does).
	esims, err := plan(rand.New(rand.NewPCG(cfg.Seed, 1)), cfg.ESIMs, cfg.Duration)
	if err != nil {
		return nil, err
	}
	if err := putContacts(ctx, c.redisURL, esims); err != nil {
		return nil, err
	}
	var events, sent []*Sent
	for _, e := range esims {
		events = append(events, e.events...)
	}
	rep.Events = len(events)
	drops := rand.New(rand.NewPCG(cfg.Seed, 5))
	for _, s := range events {
		if drops.Float64() < cfg.Drop {
			rep.Dropped++ // never attempted: the checks leave it out
			continue
		}
		sent = append(sent, s)
	}

	// The load and the faults.
	inj, err := play(ctx, cfg, c, sec, sent, rep.Load)
	if err != nil {
		return nil, err
	}

	// The verdict, once the system is quiet.
	if err := rep.judge(ctx, c, sink, events, inj.bad, stopSampling); err != nil {
		return nil, err
	}
	for _, e := range rep.Exits {
		if e.Failpoint != "" {
			inj.counts[FaultFailpoint+" "+e.Failpoint]++
		}
	}
	for _, p := range c.procs {
		rep.MaxRSSKB[p.name] = p.maxRSS()
	}
	rep.Faults, rep.Timeline = inj.summary(), inj.timeline()
	rep.Elapsed = time.Since(began)
	return rep, nil
}

// withDefaults fills in what cfg leaves zero.
func (cfg Config) withDefaults() Config {
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Failpoints == nil {
		cfg.Failpoints = DefaultFailpoints()
	}
	if cfg.ESIMs == 0 {
		cfg.ESIMs = max(100, int(25*cfg.Duration.Seconds()))
	}
	if cfg.StopFor == 0 {
		cfg.StopFor = 35 * time.Second
		if cfg.Duration < 3*time.Minute {
			cfg.StopFor = cfg.Duration / 5
		}
	}
	if cfg.MaxRSSMB == 0 {
		cfg.MaxRSSMB = 400
	}
	if cfg.SettleLimit == 0 {
		cfg.SettleLimit = 3 * time.Minute
	}
	return cfg
}

// sampleMemory keeps every process's largest RSS, sampled once a second,
// until the returned stop is called (more than once is fine) or ctx ends.
func sampleMemory(ctx context.Context, procs []*proc) (stop func()) {
	sampling, cancel := context.WithCancel(ctx)
	var sampled sync.WaitGroup
	sampled.Go(func() {
		for {
			for _, p := range procs {
				p.sampleRSS()
			}
			select {
			case <-sampling.Done():
				return
			case <-time.After(time.Second):
			}
		}
	})
	return sync.OnceFunc(func() { cancel(); sampled.Wait() })
}

// play sends the events and, when cfg.Faults, injects the scheduled faults;
// it returns the injector, which knows the faults and the bad events sent.
// The load gets a grace period after its duration to have every event
// answered 200; the faults stop at 80 % of the duration.
func play(ctx context.Context, cfg Config, c *cluster, sec secrets, events []*Sent, stats *LoadStats) (*injector, error) {
	prov, err := newProvider(c.ingestURLs, sec.ingestHMAC, stats)
	if err != nil {
		return nil, err
	}
	inj := &injector{c: c, rng: rand.New(rand.NewPCG(cfg.Seed, 2)), p: prov, stopFor: cfg.StopFor, counts: map[string]int{}}
	cfg.Log.Info("load", "esims", cfg.ESIMs, "events", len(events), "duration", cfg.Duration)
	loadCtx, cancelLoad := context.WithTimeout(ctx, cfg.Duration+2*time.Minute)
	defer cancelLoad()
	var wg sync.WaitGroup
	wg.Go(func() { prov.run(loadCtx, cfg.Seed, events, 48) })
	if cfg.Faults {
		plan := schedule
		if cfg.Cluster {
			plan = clusterSchedule
		}
		wg.Go(func() { inj.run(loadCtx, plan(rand.New(rand.NewPCG(cfg.Seed, 3)), cfg.Duration)) })
	}
	wg.Wait()
	return inj, ctx.Err()
}

// judge waits for quiescence, then checks the oracle, the exits, the ports
// and the memory, into r's Verdict, Violations and Exits.
func (r *Report) judge(ctx context.Context, c *cluster, sink *Sink, events, bad []*Sent, stopSampling func()) error {
	cfg := r.Config
	nc, err := nats.Connect(c.natsURL, nats.MaxReconnects(-1))
	if err != nil {
		return fmt.Errorf("connect to nats: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("jetstream: %w", err)
	}
	cfg.Log.Info("load done, waiting for quiescence")
	if err := quiesce(ctx, js, c, sink, cfg.SettleLimit); err != nil {
		r.Violations = append(r.Violations, Violation{Check: CheckQuiescence, Detail: err.Error()})
	}
	stopSampling()
	if c.clustered {
		// The checks read the streams: a leader for each first.
		if err := c.natsInStep(ctx); err != nil {
			return fmt.Errorf("cluster not whole for the checks: %w", err)
		}
	}
	r.Verdict, err = checkAll(ctx, js, c.redisURL, events, bad, sink, "shop.example")
	if err != nil {
		return fmt.Errorf("checks: %w", err)
	}
	r.Violations = append(r.Violations, r.Verdict.Violations...)
	r.Exits = c.exitsSoFar()
	for _, e := range r.Exits {
		if e.Crash() {
			r.Violations = append(r.Violations, Violation{Check: CheckCrash, Detail: fmt.Sprintf("%s: %s (log %s)", e.Proc, e.Status, c.byName[e.Proc].log)})
		}
	}
	for _, why := range c.gaveUp() {
		r.Violations = append(r.Violations, Violation{Check: CheckBind, Detail: why})
	}
	for _, p := range c.services() {
		if rss := p.maxRSS(); rss > cfg.MaxRSSMB<<10 {
			r.Violations = append(r.Violations, Violation{Check: CheckMemory, Detail: fmt.Sprintf("%s reached %d MB RSS, bound %d MB", p.name, rss>>10, cfg.MaxRSSMB)})
		}
	}
	return nil
}

// putContacts registers every customer's contact in the store the notifier reads.
func putContacts(ctx context.Context, redisURL string, esims []*esim) error {
	rdb, err := redisClient(redisURL)
	if err != nil {
		return err
	}
	defer rdb.Close()
	st, err := redisstore.New(rdb, redisstore.Options{SeenTTL: time.Hour})
	if err != nil {
		return fmt.Errorf("redis store: %w", err)
	}
	for _, e := range esims {
		if err := st.PutContact(ctx, e.contact); err != nil {
			return fmt.Errorf("contact %s: %w", e.txn, err)
		}
	}
	return nil
}

// Print writes the summary table.
func (r *Report) Print(w io.Writer) {
	v := r.Verdict
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k string, val any) { fmt.Fprintf(tw, "  %s\t%v\n", k, val) }
	mode := "one NATS server, one Redis"
	if r.Config.Cluster {
		mode = "3-node JetStream cluster (R3), Redis Cluster 3+3"
	}
	fmt.Fprintf(tw, "chaos run: server %s, %s, seed %d, duration %v, took %v\n", r.Config.Server, mode, r.Config.Seed, r.Config.Duration, r.Elapsed.Round(time.Second))
	row("eSIMs", r.ESIMs)
	row("events planned", r.Events)
	row("webhooks dropped (never sent)", r.Dropped)
	row("requests sent", r.Load.Requests.Load())
	row("answered 200", r.Load.OK.Load())
	row("answered 503", r.Load.Unavailable.Load())
	row("other answers", fmt.Sprintf("%d %v", r.Load.OtherStatus.Load(), statusList(r.Load.ByStatus())))
	row("no answer (timeouts, refused)", r.Load.Errors.Load())
	row("retries", r.Load.Retries.Load())
	row("deliberate resends", r.Load.Resends.Load())
	row("bad requests", r.Load.BadRequests.Load())
	if v != nil {
		row("events attempted / acknowledged / present", fmt.Sprintf("%d / %d / %d", v.Attempted, v.Acknowledged, v.Present))
		row("lost / unexpected / duplicated / indeterminate", fmt.Sprintf("%d / %d / %d / %d", v.Lost, v.Unexpected, v.Duplicated, v.Indeterminate))
		row("messages expected / received", fmt.Sprintf("%d / %d", v.Expected, v.Received))
		row("received email / sms / whatsapp / webhook", fmt.Sprintf("%d / %d / %d / %d",
			v.ByChannel["email"], v.ByChannel["sms"], v.ByChannel["whatsapp"], v.ByChannel["webhook"]))
		row("stale warnings suppressed", v.Suppressed)
		row("extra copies after unknown outcome", v.Tolerated)
		row("dead letters (planted)", fmt.Sprintf("%d (%d)", v.DeadLetters, v.DeliberateBad))
	}
	var kinds []string
	for k := range r.Faults {
		kinds = append(kinds, k)
	}
	sort.Strings(kinds)
	for _, k := range kinds {
		row("fault "+k, r.Faults[k])
	}
	var rss []string
	for name, kb := range r.MaxRSSKB {
		rss = append(rss, fmt.Sprintf("%s %dM", name, kb>>10))
	}
	sort.Strings(rss)
	row("max RSS", strings.Join(rss, ", "))
	row("exits: crashes / failed binds, restarted", fmt.Sprintf("%d / %d", r.countExits(Exit.Crash), r.countExits(func(e Exit) bool { return e.Bind != "" })))
	row("violations", len(r.Violations))
	_ = tw.Flush()
	for _, x := range r.Violations {
		fmt.Fprintf(w, "  VIOLATION [%s] %s\n", x.Check, x.Detail)
	}
	if r.Failed() {
		cluster := ""
		if r.Config.Cluster {
			cluster = " CLUSTER=1"
		}
		fmt.Fprintf(w, "  replay: make chaos SEED=%d DURATION=%v NATS=%s%s\n", r.Config.Seed, r.Config.Duration, r.Config.Server, cluster)
	}
}

// countExits counts the exits that match.
func (r *Report) countExits(match func(Exit) bool) int {
	n := 0
	for _, e := range r.Exits {
		if match(e) {
			n++
		}
	}
	return n
}

func statusList(m map[int]int) string {
	var codes []int
	for c := range m {
		codes = append(codes, c)
	}
	sort.Ints(codes)
	var parts []string
	for _, c := range codes {
		if c != 200 && c != 503 {
			parts = append(parts, fmt.Sprintf("%d×%d", m[c], c))
		}
	}
	return strings.Join(parts, " ")
}

// ErrNoServer is returned when a NATS or Redis binary is missing.
var ErrNoServer = errors.New("server binary not found")

// FindBinaries locates the system's nats-server and redis-server.
func FindBinaries() (natsServer, redisServer string, err error) {
	natsServer, redisServer = "/usr/sbin/nats-server", "/usr/bin/redis-server"
	for _, b := range []string{natsServer, redisServer} {
		if _, err := os.Stat(b); err != nil {
			return "", "", fmt.Errorf("%w: %s", ErrNoServer, b)
		}
	}
	return natsServer, redisServer, nil
}

// WorkspaceRoot finds the go.work directory above dir.
func WorkspaceRoot(dir string) (string, error) {
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.work")); err == nil {
			return d, nil
		}
		if filepath.Dir(d) == d {
			return "", fmt.Errorf("no go.work above %s", dir)
		}
	}
}
