// Package harness measures esimflow against the baselines of issue 7 in one
// run: ingest against a minimal Go handler doing the same JetStream publish and
// against the provider docs' Express handler; the processor draining a backlog
// against a tuned consumer; the whole pipeline sustained against ingest alone;
// the all-in-one against raw fsync-always JetStream publishing; and the hot
// functions' Go benchmarks. It starts its own nats-server and redis-server on
// free ports and runs esimflow's binaries as processes, so CPU and memory are
// read from /proc for each one.
package harness

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/esimflow/esimflow/bench/report"
	"github.com/esimflow/esimflow/shared/stream"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
)

// Config says what to run and how long.
type Config struct {
	Quick    bool          // BENCH_QUICK: one run, short durations, small backlog
	Runs     int           // runs of each figure (its median is reported)
	Conns    int           // concurrent connections of the load generator
	Duration time.Duration // each HTTP attack
	Hold     time.Duration // each rate step of the sustained pipeline
	Backlog  int           // events the consumers drain

	RepoDir  string // the repository, for go test
	BinDir   string // ingest, processor, notifier, esimflow
	Self     string // this program, started again as the baseline handler
	NATSBin  string
	RedisBin string
	NodeBin  string // "" when Node.js is not installed
	NPMBin   string
	WorkDir  string // temporary: stores, logs, the Express app

	Peers      bool   // BENCH_PEERS: build and measure the Redpanda Connect peer
	ConnectDir string // its module (bench/connectpeer)

	// Only, when not empty, names the scenarios to run (BENCH_ONLY, comma
	// separated: http, drain, scaling, pipeline, all-in-one, connect, wake,
	// micro), for working on one stage; the document then lacks the others.
	Only []string
	// Profile (BENCH_PROFILE) serves Go profiles from every esimflow process
	// and saves CPU profiles — ingest under full load, the processor
	// draining, the three services over each pipeline step — in the work
	// dir's profiles folder.
	Profile bool

	Progress io.Writer // one line per step
}

// Defaults returns the full run's settings, or the quick pass's.
func Defaults(quick bool) Config {
	if quick {
		return Config{Quick: true, Runs: 1, Conns: 64, Duration: 3 * time.Second, Hold: 5 * time.Second, Backlog: 20_000}
	}
	return Config{Runs: 3, Conns: 64, Duration: 10 * time.Second, Hold: 30 * time.Second, Backlog: 100_000}
}

// Harness holds what the scenarios share: the servers, the connections to
// them, the credentials ingest is configured with.
type Harness struct {
	cfg     Config
	infra   *Infra
	nc      *nats.Conn
	js      jetstream.JetStream
	rdb     *redis.Client
	signer  *Signer
	express string // the Express app's folder, "" when not available
	noExpr  string // why not
	connect string // the Connect peer's binary, "" when not run
	noConn  string // why not
	seq     int    // namespaces and body seeds, distinct per scenario
	figs    figures
	notes   []string
}

// figures collects each figure's per-run values by key.
type figures map[string][]float64

func (f figures) add(key string, v float64) { f[key] = append(f[key], v) }

// Run measures everything and returns the document.
func Run(ctx context.Context, cfg Config) (report.Document, error) {
	h := &Harness{cfg: cfg, figs: figures{}}
	var err error
	if h.signer, err = NewSigner(); err != nil {
		return report.Document{}, err
	}
	h.infra, err = StartInfra(ctx, cfg.WorkDir, cfg.NATSBin, cfg.RedisBin)
	if err != nil {
		return report.Document{}, err
	}
	defer h.infra.Stop()
	if h.nc, err = nats.Connect(h.infra.NATSURL, nats.Name("esimbench")); err != nil {
		return report.Document{}, fmt.Errorf("connect %s: %w", h.infra.NATSURL, err)
	}
	defer h.nc.Close()
	if h.js, err = jetstream.New(h.nc, jetstream.WithPublishAsyncMaxPending(256)); err != nil {
		return report.Document{}, fmt.Errorf("jetstream: %w", err)
	}
	ropts, err := redis.ParseURL(h.infra.RedisURL)
	if err != nil {
		return report.Document{}, fmt.Errorf("redis url: %w", err)
	}
	h.rdb = redis.NewClient(ropts)
	defer h.rdb.Close()

	h.express, h.noExpr = h.installExpress(ctx)
	h.connect, h.noConn = h.buildConnect(ctx)
	if h.noConn != "" {
		h.progress("Connect peer: %s", h.noConn)
	}

	for run := 1; run <= cfg.Runs; run++ {
		for _, sc := range []struct {
			name, key string
			fn        func(context.Context) error
		}{
			{"http", "http", h.httpRun},
			{"drain", "drain", h.drainRun},
			{"processor scaling", "scaling", h.scaleRun},
			{"pipeline", "pipeline", h.pipelineRun},
			{"all-in-one", "all-in-one", h.allInOneRun},
			{"Connect peer", "connect", h.peerRun},
		} {
			if !h.runs(sc.key) {
				continue
			}
			h.progress("run %d/%d: %s", run, cfg.Runs, sc.name)
			if err := sc.fn(ctx); err != nil {
				if ctx.Err() != nil {
					return report.Document{}, ctx.Err()
				}
				h.note("run %d, %s: %v", run, sc.name, err)
				h.progress("  failed: %v", err)
			}
		}
	}
	if h.runs("wake") {
		h.progress("waiting-message latency")
		if err := h.wakeRun(ctx); err != nil {
			h.note("waiting-message latency: %v", err)
			h.progress("  failed: %v", err)
		}
	}
	var micro []report.Micro
	if h.runs("micro") {
		h.progress("micro-benchmarks")
		if micro, err = h.micro(ctx); err != nil {
			h.note("micro-benchmarks: %v", err)
		}
	}
	return h.document(ctx, micro), nil
}

// runs reports whether the scenario named key is to run (Config.Only).
func (h *Harness) runs(key string) bool {
	return len(h.cfg.Only) == 0 || slices.Contains(h.cfg.Only, key)
}

func (h *Harness) progress(format string, args ...any) {
	if h.cfg.Progress != nil {
		fmt.Fprintf(h.cfg.Progress, time.Now().Format("15:04:05 ")+format+"\n", args...)
	}
}

func (h *Harness) note(format string, args ...any) {
	h.notes = append(h.notes, fmt.Sprintf(format, args...))
}

// namespace returns a fresh namespace (streams, consumers, Redis keys) and
// body generator for one scenario of one run, so no run sees another's events
// or dedupe window.
func (h *Harness) namespace(tag string) (stream.Names, *Bodies) {
	h.seq++
	return stream.NewNames(fmt.Sprintf("bench%02d%s", h.seq, tag)), NewBodies(h.seq)
}

// limits are the defaults every esimflow service starts with, so the streams
// the harness creates are the ones the services expect.
var limits = stream.Limits{Replicas: 1, EventsMaxAge: 720 * time.Hour, EventsMaxBytes: -1, MaxDeliver: 10}

// dropNamespace deletes a finished scenario's streams and Redis keys, so the
// next one starts on an empty store and the disk does not fill over a run.
func (h *Harness) dropNamespace(ctx context.Context, n stream.Names) {
	for _, cfg := range n.StreamConfigs(limits) {
		if err := h.js.DeleteStream(ctx, cfg.Name); err != nil && !isNotFound(err) {
			h.note("delete stream %s: %v", cfg.Name, err)
		}
	}
	lister := h.js.StreamNames(ctx)
	var kv []string
	for name := range lister.Name() {
		if strings.HasPrefix(name, "KV_"+n.Namespace()+"_") {
			kv = append(kv, name)
		}
	}
	for _, name := range kv {
		if err := h.js.DeleteStream(ctx, name); err != nil {
			h.note("delete stream %s: %v", name, err)
		}
	}
	// The harness's own Redis: nobody else's keys are in it.
	if err := h.rdb.FlushAll(ctx).Err(); err != nil {
		h.note("flush the harness redis: %v", err)
	}
}

func isNotFound(err error) bool { return errors.Is(err, jetstream.ErrStreamNotFound) }

// serviceEnv is the environment every esimflow process gets: the harness's
// servers, the namespace, free ports, and ingest's verification all on (path
// token, Standard Webhooks signature, sender allowlist).
func (h *Harness) serviceEnv(n stream.Names, httpAddr, adminAddr string) []string {
	return append(h.ingestEnv(httpAddr, adminAddr),
		"ESIMFLOW_NATS_URL="+h.infra.NATSURL,
		"ESIMFLOW_REDIS_URL="+h.infra.RedisURL,
		"ESIMFLOW_NAMESPACE="+n.Namespace(),
		"ESIMFLOW_PPROF="+strconv.FormatBool(h.cfg.Profile),
	)
}

// ingestEnv is what every process that runs ingest gets: its addresses,
// every check on with the signer's token and secret, quiet logs, no tracing.
func (h *Harness) ingestEnv(httpAddr, adminAddr string) []string {
	return []string{
		"ESIMFLOW_HTTP_ADDR=" + httpAddr,
		"ESIMFLOW_ADMIN_ADDR=" + adminAddr,
		"ESIMFLOW_INGEST_TOKENS=" + h.signer.Token,
		"ESIMFLOW_INGEST_HMAC_SECRETS=" + h.signer.Secret,
		"ESIMFLOW_INGEST_ALLOW_CIDRS=127.0.0.0/8",
		"ESIMFLOW_LOG_LEVEL=warn",
		"OTEL_SDK_DISABLED=true",
	}
}

// startService starts one of esimflow's binaries and waits for /readyz.
func (h *Harness) startService(ctx context.Context, name string, n stream.Names, quietStdout bool, extra ...string) (*Process, string, error) {
	s, err := h.launchService(name, name+"-"+n.Namespace(), n, quietStdout, extra...)
	if err != nil {
		return nil, "", err
	}
	if err := s.ready(ctx); err != nil {
		s.Stop()
		return nil, "", err
	}
	return s.Process, s.url, nil
}

// service is one of esimflow's binaries, started and not yet known ready.
type service struct {
	*Process
	url   string // its HTTP listener
	admin string // its /readyz
}

func (s service) ready(ctx context.Context) error { return waitHTTP(ctx, s.Process, s.admin) }

// launchService starts one of esimflow's binaries without waiting for it,
// its log named logName.
func (h *Harness) launchService(name, logName string, n stream.Names, quietStdout bool, extra ...string) (service, error) {
	httpAddr, err := freeAddr()
	if err != nil {
		return service{}, err
	}
	adminAddr, err := freeAddr()
	if err != nil {
		return service{}, err
	}
	env := append(h.serviceEnv(n, httpAddr, adminAddr), extra...)
	bin := filepath.Join(h.cfg.BinDir, name)
	var p *Process
	if quietStdout {
		p, err = StartQuiet(h.cfg.WorkDir, logName, bin, nil, env)
	} else {
		p, err = Start(h.cfg.WorkDir, logName, bin, nil, env)
	}
	if err != nil {
		return service{}, err
	}
	p.admin = "http://" + adminAddr
	return service{Process: p, url: "http://" + httpAddr, admin: p.admin + "/readyz"}, nil
}

// lag is a consumer's backlog: messages not yet delivered plus delivered and
// not yet acked.
func (h *Harness) lag(ctx context.Context, streamName, consumer string) (uint64, error) {
	var c interface {
		Info(context.Context) (*jetstream.ConsumerInfo, error)
	}
	c, err := h.js.Consumer(ctx, streamName, consumer)
	if errors.Is(err, jetstream.ErrNotPullConsumer) {
		// The Connect peer's: its input reads a push consumer.
		c, err = h.js.PushConsumer(ctx, streamName, consumer)
	}
	if err != nil {
		return 0, fmt.Errorf("consumer %s: %w", consumer, err)
	}
	info, err := c.Info(ctx)
	if err != nil {
		return 0, fmt.Errorf("consumer %s info: %w", consumer, err)
	}
	return info.NumPending + uint64(info.NumAckPending), nil
}

func mib(b uint64) float64 { return float64(b) / (1 << 20) }

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func perOp(cpu time.Duration, ops float64) float64 {
	if ops <= 0 {
		return math.NaN()
	}
	return float64(cpu) / float64(time.Microsecond) / ops
}

func ratio(a, b float64) float64 {
	if b == 0 || math.IsNaN(a) || math.IsNaN(b) {
		return math.NaN()
	}
	return a / b
}

// mkdir makes a fresh directory under the work dir.
func (h *Harness) mkdir(name string) (string, error) {
	dir, err := os.MkdirTemp(h.cfg.WorkDir, name+"-")
	if err != nil {
		return "", fmt.Errorf("work dir: %w", err)
	}
	return dir, nil
}
