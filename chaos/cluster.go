package chaos

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/esimflow/esimflow/shared/clustertest"
)

// Binaries are the programs a run starts.
type Binaries struct {
	Ingest, Processor, Notifier string
	// NATS is the nats-server binary; Redis the redis-server binary, and
	// RedisCLI redis-cli (which forms a Redis Cluster).
	NATS, Redis, RedisCLI string
}

// Build compiles the services with the failpoints tag into dir, from the
// workspace at root. newestNATS, when set, also builds the nats-server
// version the workspace pins, returned as the second value.
func Build(ctx context.Context, root, dir string, newestNATS bool) (Binaries, string, error) {
	b := Binaries{
		Ingest:    filepath.Join(dir, "ingest"),
		Processor: filepath.Join(dir, "processor"),
		Notifier:  filepath.Join(dir, "notifier"),
	}
	builds := [][]string{
		{"build", "-tags", "failpoints", "-o", b.Ingest, "./ingest/cmd/ingest"},
		{"build", "-tags", "failpoints", "-o", b.Processor, "./processor/cmd/processor"},
		{"build", "-tags", "failpoints", "-o", b.Notifier, "./notifier/cmd/notifier"},
	}
	newest := ""
	if newestNATS {
		newest = filepath.Join(dir, "nats-server-newest")
		builds = append(builds, []string{"build", "-o", newest, "github.com/nats-io/nats-server/v2"})
	}
	for _, args := range builds {
		cmd := exec.CommandContext(ctx, "go", args...)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			return b, "", fmt.Errorf("go %s: %w\n%s", strings.Join(args, " "), err, out)
		}
	}
	return b, newest, nil
}

// cluster is every process of one run and the supervisor that restarts them.
type cluster struct {
	dir      string
	bins     Binaries
	ports    *clustertest.Ports
	natsURL  string
	redisURL string
	natsKill syscall.Signal // how a NATS restart stops the server
	// clustered: three NATS nodes (nats-1…3) and a Redis Cluster
	// (redis-1…6) instead of one of each; redisCLI forms the latter.
	clustered  bool
	redisCLI   string
	natsNode   map[string]*proc // nats-server server_name → its process
	ingest     []*proc
	procs      []*proc // every process, infrastructure first
	byName     map[string]*proc
	admin      map[string]string // service name → admin base URL
	ingestURLs []string
	log        *slog.Logger

	exits   chan Exit
	mu      sync.Mutex
	history []Exit
	closing bool
	binding map[string]time.Time // process → first of its failed binds in a row
	unbound map[string]string    // process → why it was given up on
	// bindLimit is how long a process that cannot bind is restarted.
	bindLimit time.Duration
	restarts  sync.WaitGroup
	// infraDown counts NATS or Redis restarts under way: services killed
	// meanwhile are restarted once both are back, as an orchestrator would.
	infraDown sync.RWMutex
}

// How a process that cannot bind its port is treated: restarted after
// restartDelay, as any other, until bindLimit has passed since the first
// failed bind in a row; then it stays down and the run reports it under
// CheckBind, naming the address.
const (
	restartDelay = 500 * time.Millisecond
	bindLimit    = 30 * time.Second
)

// Secrets the run configures: the provider's signing secret and the
// notifier's webhook secret.
type secrets struct{ ingestHMAC, notifyHMAC string }

func newSecret() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return "whsec_" + base64.StdEncoding.EncodeToString(b)
}

// clusterSpec is what a cluster is made of.
type clusterSpec struct {
	dir                           string
	bins                          Binaries
	syncAlways                    bool // the NATS server fsyncs before every ack: restarts may use SIGKILL
	sink                          *Sink
	secrets                       secrets
	failpoints                    map[string]string // role → ESIMFLOW_FAILPOINTS
	ingest, processors, notifiers int
	log                           *slog.Logger
	// clustered runs a three-node JetStream cluster and a Redis Cluster of
	// three primaries with a replica each (clusterinfra.go).
	clustered bool
}

func newCluster(spec clusterSpec) (*cluster, error) {
	ports, err := clustertest.NewPorts()
	if err != nil {
		return nil, err
	}
	c := &cluster{dir: spec.dir, bins: spec.bins, ports: ports, byName: map[string]*proc{}, admin: map[string]string{},
		exits: make(chan Exit, 64), log: spec.log, natsKill: syscall.SIGTERM,
		binding: map[string]time.Time{}, unbound: map[string]string{}, bindLimit: bindLimit}
	if spec.syncAlways {
		c.natsKill = syscall.SIGKILL
	}
	c.clustered = spec.clustered
	for _, d := range []string{"nats", "redis", "logs"} {
		if err := os.MkdirAll(filepath.Join(spec.dir, d), 0o755); err != nil {
			return nil, fmt.Errorf("data dir: %w", err)
		}
	}
	addNATS, addRedis := c.addNATS, c.addRedis
	if spec.clustered {
		addNATS, addRedis = c.addNATSCluster, c.addRedisCluster
	}
	if err := addNATS(spec); err != nil {
		return nil, err
	}
	if err := addRedis(spec); err != nil {
		return nil, err
	}
	if err := c.addServices(spec); err != nil {
		return nil, err
	}
	return c, nil
}

// addNATS adds the NATS server, its store in dir/nats.
func (c *cluster) addNATS(spec clusterSpec) error {
	port, err := c.ports.Take()
	if err != nil {
		return err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	c.natsURL = "nats://" + addr
	natsConf := filepath.Join(spec.dir, "nats.conf")
	conf := fmt.Sprintf("listen: %s\njetstream {\n  store_dir: %q\n", addr, filepath.Join(spec.dir, "nats"))
	if spec.syncAlways {
		conf += "  sync_interval: always\n"
	}
	conf += "}\n"
	if err := os.WriteFile(natsConf, []byte(conf), 0o644); err != nil {
		return fmt.Errorf("nats config: %w", err)
	}
	c.add(&proc{name: "nats", role: "nats", bin: spec.bins.NATS, args: []string{"-c", natsConf}, addrs: []string{addr}})
	return nil
}

// addRedis adds the Redis server, its append-only file in dir/redis.
func (c *cluster) addRedis(spec clusterSpec) error {
	port, err := c.ports.Take()
	if err != nil {
		return err
	}
	addr := "127.0.0.1:" + strconv.Itoa(port)
	c.redisURL = "redis://" + addr
	c.add(&proc{name: "redis", role: "redis", bin: spec.bins.Redis, addrs: []string{addr}, args: []string{
		"--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", filepath.Join(spec.dir, "redis"), "--save", "",
		"--appendonly", "yes", "--appendfsync", "always", "--maxmemory-policy", "noeviction", "--protected-mode", "no"}})
	return nil
}

// addServices adds the ingest, processor and notifier instances.
func (c *cluster) addServices(spec clusterSpec) error {
	base := []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"),
		"ESIMFLOW_NATS_URL=" + c.natsURL, "ESIMFLOW_REDIS_URL=" + c.redisURL,
		"ESIMFLOW_LOG_FORMAT=text", "ESIMFLOW_LOG_LEVEL=warn",
	}
	if c.clustered {
		base = append(base, "ESIMFLOW_STREAM_REPLICAS=3")
	}
	bins := map[string]string{"ingest": spec.bins.Ingest, "processor": spec.bins.Processor, "notifier": spec.bins.Notifier}
	// service adds one instance: an admin port, and the HTTP port of ingest.
	service := func(role string, i int, extra ...string) error {
		port, err := c.ports.Take()
		if err != nil {
			return err
		}
		admin := "127.0.0.1:" + strconv.Itoa(port)
		p := &proc{name: role + "-" + strconv.Itoa(i), role: role, bin: bins[role], addrs: []string{admin},
			env: append(append([]string{}, base...), "ESIMFLOW_ADMIN_ADDR="+admin)}
		if role == "ingest" {
			port, err := c.ports.Take()
			if err != nil {
				return err
			}
			hook := "127.0.0.1:" + strconv.Itoa(port)
			p.addrs = append(p.addrs, hook)
			p.env = append(p.env, "ESIMFLOW_HTTP_ADDR="+hook)
			c.ingestURLs = append(c.ingestURLs, "http://"+hook+"/webhooks/esim")
		}
		if fp := spec.failpoints[role]; fp != "" {
			p.env = append(p.env, "ESIMFLOW_FAILPOINTS="+fp)
		}
		p.env = append(p.env, extra...)
		c.add(p)
		c.admin[p.name] = "http://" + admin
		return nil
	}
	for i := 1; i <= spec.ingest; i++ {
		if err := service("ingest", i, "ESIMFLOW_INGEST_HMAC_SECRETS="+spec.secrets.ingestHMAC); err != nil {
			return err
		}
	}
	for i := 1; i <= spec.processors; i++ {
		if err := service("processor", i); err != nil {
			return err
		}
	}
	for i := 1; i <= spec.notifiers; i++ {
		if err := service("notifier", i,
			"ESIMFLOW_SMTP_URL=smtp://"+spec.sink.SMTPAddr, "ESIMFLOW_EMAIL_FROM=Chaos Shop <care@shop.example>", "ESIMFLOW_EMAIL_RATE=0",
			"ESIMFLOW_SMS_API_URL="+spec.sink.HTTPURL, "ESIMFLOW_SMS_ACCOUNT_SID=ACchaos", "ESIMFLOW_SMS_AUTH_TOKEN=chaos",
			"ESIMFLOW_SMS_FROM=+15005550006", "ESIMFLOW_SMS_RATE=0",
			"ESIMFLOW_WHATSAPP_API_URL="+spec.sink.HTTPURL+"/v21.0", "ESIMFLOW_WHATSAPP_PHONE_NUMBER_ID=106540352242922",
			"ESIMFLOW_WHATSAPP_TOKEN=chaos", "ESIMFLOW_WHATSAPP_RATE=0",
			"ESIMFLOW_NOTIFY_WEBHOOK_URL="+spec.sink.HTTPURL+"/hook", "ESIMFLOW_NOTIFY_WEBHOOK_SECRET="+spec.secrets.notifyHMAC,
			"ESIMFLOW_NOTIFY_WEBHOOK_ALLOW_PRIVATE=true", "ESIMFLOW_NOTIFY_WEBHOOK_RATE=0"); err != nil {
			return err
		}
	}
	return nil
}

func (c *cluster) add(p *proc) {
	p.log = filepath.Join(c.dir, "logs", p.name+".log")
	c.procs = append(c.procs, p)
	c.byName[p.name] = p
	if p.role == "ingest" {
		c.ingest = append(c.ingest, p)
	}
}

// services returns the processes of the service roles.
func (c *cluster) services() []*proc {
	return slices.DeleteFunc(slices.Clone(c.procs), (*proc).isInfra)
}

// infra returns NATS and Redis.
func (c *cluster) infra() []*proc {
	return slices.DeleteFunc(slices.Clone(c.procs), func(p *proc) bool { return !p.isInfra() })
}

func (p *proc) isInfra() bool { return p.role == "nats" || p.role == "redis" }

// start runs everything, infrastructure first, and waits until every
// service answers /readyz.
func (c *cluster) start(ctx context.Context) error {
	go c.supervise()
	for _, p := range c.infra() {
		if err := c.startInfra(ctx, p); err != nil {
			return err
		}
	}
	if c.clustered {
		if err := c.formClusters(ctx); err != nil {
			return err
		}
	}
	for _, p := range c.services() {
		if err := p.start(c.exits); err != nil {
			return err
		}
	}
	for _, p := range c.services() {
		if err := c.waitReady(ctx, p.name, time.Minute); err != nil {
			return err
		}
	}
	return nil
}

// startInfra starts NATS or Redis and waits until it accepts connections;
// a start that fails to bind its port is tried again for bindLimit.
func (c *cluster) startInfra(ctx context.Context, p *proc) error {
	first := time.Now()
	for {
		if err := p.start(c.exits); err != nil {
			return err
		}
		err := waitListening(ctx, p, 30*time.Second)
		if err == nil {
			return nil
		}
		e, down := p.lastExit()
		if !down || e.Bind == "" || ctx.Err() != nil {
			return err
		}
		if time.Since(first) > c.bindLimit {
			c.giveUp(p, e, first)
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(restartDelay):
		}
	}
}

// waitListening waits until p's first address accepts connections, p ends,
// or limit passes.
func waitListening(ctx context.Context, p *proc, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		conn, err := net.DialTimeout("tcp", p.addrs[0], time.Second)
		if err == nil {
			_ = conn.Close()
			return nil
		}
		if e, down := p.lastExit(); down {
			if e.Bind != "" {
				return fmt.Errorf("%s could not bind %s: address already in use (log %s)", p.name, e.Bind, p.log)
			}
			return fmt.Errorf("%s ended before it listened on %s: %s (log %s)", p.name, p.addrs[0], e.Status, p.log)
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s does not answer on %s after %v: %w", p.name, p.addrs[0], limit, err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func (c *cluster) waitReady(ctx context.Context, name string, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		resp, err := http.Get(c.admin[name] + "/readyz")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after %v%s (log %s)", name, limit, c.lastWords(c.byName[name]), c.byName[name].log)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// supervise records every exit and restarts services that ended, as an
// orchestrator would; infrastructure is restarted by the fault that stopped it.
func (c *cluster) supervise() {
	for e := range c.exits {
		p := c.byName[e.Proc]
		c.mu.Lock()
		c.history = append(c.history, e)
		closing := c.closing
		first, ok := c.binding[p.name]
		switch {
		case e.Bind == "":
			delete(c.binding, p.name)
		case !ok:
			first = e.At
			c.binding[p.name] = first
		}
		c.mu.Unlock()
		switch {
		case e.Crash():
			c.log.Error("process exited on its own", "proc", e.Proc, "status", e.Status, "log", p.log)
		case e.Bind != "":
			c.log.Warn("could not bind, restarting", "proc", e.Proc, "addr", e.Bind, "since", time.Since(first).Round(time.Millisecond))
		case e.Failpoint != "":
			c.log.Info("failpoint", "proc", e.Proc, "point", e.Failpoint)
		}
		if closing || p.isInfra() {
			continue
		}
		if e.Bind != "" && time.Since(first) > c.bindLimit {
			c.giveUp(p, e, first)
			continue
		}
		c.restarts.Add(1)
		go func() {
			defer c.restarts.Done()
			c.restart(p)
		}()
	}
}

// restart starts a service that ended again after restartDelay.
func (c *cluster) restart(p *proc) {
	time.Sleep(restartDelay)
	c.infraDown.RLock() // not while NATS or Redis is restarting
	defer c.infraDown.RUnlock()
	c.mu.Lock()
	closing := c.closing
	c.mu.Unlock()
	if closing {
		return
	}
	if err := p.start(c.exits); err != nil {
		c.log.Error("restart failed", "proc", p.name, "err", err)
		return
	}
	// Holding off NATS and Redis restarts until it is ready: a service
	// whose start-up meets an outage exits (start failed), which an
	// orchestrator answers with another restart but this run would count
	// as a crash.
	c.settle(p, 30*time.Second)
}

// giveUp records that p could not bind its port for c.bindLimit: it stays
// down, and the run reports it.
func (c *cluster) giveUp(p *proc, e Exit, first time.Time) {
	why := fmt.Sprintf("%s could not bind %s for %v (address already in use; log %s)",
		p.name, e.Bind, e.At.Sub(first).Round(time.Second), p.log)
	c.log.Error("gave up restarting", "proc", p.name, "why", why)
	c.mu.Lock()
	defer c.mu.Unlock()
	c.unbound[p.name] = why
}

// gaveUp returns why each process given up on is down, in no order.
func (c *cluster) gaveUp() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, why := range c.unbound {
		out = append(out, why)
	}
	return out
}

// lastWords says why p is down, if it is: given up on, or how it last ended.
func (c *cluster) lastWords(p *proc) string {
	c.mu.Lock()
	why := c.unbound[p.name]
	c.mu.Unlock()
	if why != "" {
		return ": " + why
	}
	if e, down := p.lastExit(); down {
		if e.Bind != "" {
			return fmt.Sprintf(": down, could not bind %s", e.Bind)
		}
		return ": down, " + e.Status
	}
	return ""
}

// settle waits until p answers /readyz, ends, or limit passes.
func (c *cluster) settle(p *proc, limit time.Duration) {
	deadline := time.Now().Add(limit)
	for time.Now().Before(deadline) {
		if _, _, ok := p.running(); !ok {
			return
		}
		resp, err := http.Get(c.admin[p.name] + "/readyz")
		if err == nil {
			_ = resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// restartInfra stops NATS or Redis with sig, waits down, and starts it again.
func (c *cluster) restartInfra(ctx context.Context, name string, sig syscall.Signal, down time.Duration) error {
	c.infraDown.Lock()
	defer c.infraDown.Unlock()
	return c.restartInfraHeld(ctx, name, sig, down)
}

// restartInfraHeld is restartInfra for a caller that holds infraDown.
func (c *cluster) restartInfraHeld(ctx context.Context, name string, sig syscall.Signal, down time.Duration) error {
	p := c.byName[name]
	p.stop(sig, 20*time.Second)
	select {
	case <-ctx.Done():
	case <-time.After(down):
	}
	return c.startInfra(ctx, p)
}

// exitsSoFar returns every exit recorded.
func (c *cluster) exitsSoFar() []Exit {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Exit(nil), c.history...)
}

// down names a process that is not running or is stopped, "" when every
// process runs but those given up on (reported under CheckBind).
func (c *cluster) down() string {
	c.mu.Lock()
	unbound := maps.Clone(c.unbound)
	c.mu.Unlock()
	for _, p := range c.procs {
		if _, given := unbound[p.name]; given {
			continue
		}
		if _, stopped, ok := p.running(); !ok || stopped {
			return p.name + " is down or stopped"
		}
	}
	return ""
}

// close stops everything: services first, then Redis and NATS.
func (c *cluster) close() {
	c.mu.Lock()
	c.closing = true
	c.mu.Unlock()
	c.restarts.Wait()
	var wg sync.WaitGroup
	for _, p := range c.services() {
		wg.Go(func() { p.stop(syscall.SIGTERM, 5*time.Second) })
	}
	wg.Wait()
	for _, p := range c.infra() {
		p.stop(syscall.SIGTERM, 5*time.Second)
	}
}
