package chaos

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Binaries are the programs a run starts.
type Binaries struct {
	Ingest, Processor, Notifier string
	// NATS is the nats-server binary; Redis the redis-server binary.
	NATS, Redis string
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
	dir        string
	bins       Binaries
	natsURL    string
	redisURL   string
	natsKill   syscall.Signal // how a NATS restart stops the server
	ingest     []*proc
	procs      []*proc // every process, infrastructure first
	byName     map[string]*proc
	admin      map[string]string // service name → admin base URL
	ingestURLs []string
	log        *slog.Logger

	exits    chan Exit
	mu       sync.Mutex
	history  []Exit
	closing  bool
	restarts sync.WaitGroup
	// infraDown counts NATS or Redis restarts under way: services killed
	// meanwhile are restarted once both are back, as an orchestrator would.
	infraDown sync.RWMutex
}

// Secrets the run configures: the provider's signing secret and the
// notifier's webhook secret.
type secrets struct{ ingestHMAC, notifyHMAC string }

func newSecret() string {
	b := make([]byte, 24)
	_, _ = rand.Read(b)
	return "whsec_" + base64.StdEncoding.EncodeToString(b)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
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
}

func newCluster(spec clusterSpec) (*cluster, error) {
	c := &cluster{dir: spec.dir, bins: spec.bins, byName: map[string]*proc{}, admin: map[string]string{},
		exits: make(chan Exit, 64), log: spec.log, natsKill: syscall.SIGTERM}
	if spec.syncAlways {
		c.natsKill = syscall.SIGKILL
	}
	natsPort, err := freePort()
	if err != nil {
		return nil, err
	}
	redisPort, err := freePort()
	if err != nil {
		return nil, err
	}
	c.natsURL = "nats://127.0.0.1:" + strconv.Itoa(natsPort)
	c.redisURL = "redis://127.0.0.1:" + strconv.Itoa(redisPort)

	natsDir := filepath.Join(spec.dir, "nats")
	redisDir := filepath.Join(spec.dir, "redis")
	for _, d := range []string{natsDir, redisDir, filepath.Join(spec.dir, "logs")} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nil, fmt.Errorf("data dir: %w", err)
		}
	}
	natsConf := filepath.Join(spec.dir, "nats.conf")
	conf := fmt.Sprintf("listen: 127.0.0.1:%d\njetstream {\n  store_dir: %q\n", natsPort, natsDir)
	if spec.syncAlways {
		conf += "  sync_interval: always\n"
	}
	conf += "}\n"
	if err := os.WriteFile(natsConf, []byte(conf), 0o644); err != nil {
		return nil, fmt.Errorf("nats config: %w", err)
	}
	c.add(&proc{name: "nats", role: "nats", bin: spec.bins.NATS, args: []string{"-c", natsConf}})
	c.add(&proc{name: "redis", role: "redis", bin: spec.bins.Redis, args: []string{
		"--port", strconv.Itoa(redisPort), "--bind", "127.0.0.1", "--dir", redisDir, "--save", "",
		"--appendonly", "yes", "--appendfsync", "always", "--maxmemory-policy", "noeviction", "--protected-mode", "no"}})

	base := []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"),
		"ESIMFLOW_NATS_URL=" + c.natsURL, "ESIMFLOW_REDIS_URL=" + c.redisURL,
		"ESIMFLOW_LOG_FORMAT=text", "ESIMFLOW_LOG_LEVEL=warn",
	}
	service := func(role string, i int, extra ...string) error {
		port, err := freePort()
		if err != nil {
			return err
		}
		name := role + "-" + strconv.Itoa(i)
		env := append(append([]string{}, base...), "ESIMFLOW_ADMIN_ADDR=127.0.0.1:"+strconv.Itoa(port))
		if fp := spec.failpoints[role]; fp != "" {
			env = append(env, "ESIMFLOW_FAILPOINTS="+fp)
		}
		env = append(env, extra...)
		bin := map[string]string{"ingest": spec.bins.Ingest, "processor": spec.bins.Processor, "notifier": spec.bins.Notifier}[role]
		p := &proc{name: name, role: role, bin: bin, env: env}
		c.add(p)
		c.admin[name] = "http://127.0.0.1:" + strconv.Itoa(port)
		return nil
	}
	for i := 1; i <= spec.ingest; i++ {
		port, err := freePort()
		if err != nil {
			return nil, err
		}
		if err := service("ingest", i, "ESIMFLOW_HTTP_ADDR=127.0.0.1:"+strconv.Itoa(port),
			"ESIMFLOW_INGEST_HMAC_SECRETS="+spec.secrets.ingestHMAC); err != nil {
			return nil, err
		}
		c.ingestURLs = append(c.ingestURLs, "http://127.0.0.1:"+strconv.Itoa(port)+"/webhooks/esim")
	}
	for i := 1; i <= spec.processors; i++ {
		if err := service("processor", i); err != nil {
			return nil, err
		}
	}
	for i := 1; i <= spec.notifiers; i++ {
		if err := service("notifier", i,
			"ESIMFLOW_SMTP_URL=smtp://"+spec.sink.SMTPAddr, "ESIMFLOW_EMAIL_FROM=Chaos Shop <care@shop.example>", "ESIMFLOW_EMAIL_RATE=0",
			"ESIMFLOW_SMS_API_URL="+spec.sink.HTTPURL, "ESIMFLOW_SMS_ACCOUNT_SID=ACchaos", "ESIMFLOW_SMS_AUTH_TOKEN=chaos",
			"ESIMFLOW_SMS_FROM=+15005550006", "ESIMFLOW_SMS_RATE=0",
			"ESIMFLOW_NOTIFY_WEBHOOK_URL="+spec.sink.HTTPURL+"/hook", "ESIMFLOW_NOTIFY_WEBHOOK_SECRET="+spec.secrets.notifyHMAC,
			"ESIMFLOW_NOTIFY_WEBHOOK_ALLOW_PRIVATE=true", "ESIMFLOW_NOTIFY_WEBHOOK_RATE=0"); err != nil {
			return nil, err
		}
	}
	return c, nil
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
	var out []*proc
	for _, p := range c.procs {
		if p.role != "nats" && p.role != "redis" {
			out = append(out, p)
		}
	}
	return out
}

// start runs everything, infrastructure first, and waits until every
// service answers /readyz.
func (c *cluster) start(ctx context.Context) error {
	go c.supervise()
	for _, p := range c.procs[:2] {
		if err := p.start(c.exits); err != nil {
			return err
		}
	}
	if err := c.waitInfra(ctx); err != nil {
		return err
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

// waitInfra waits until NATS and Redis accept connections.
func (c *cluster) waitInfra(ctx context.Context) error {
	for _, u := range []string{c.natsURL, c.redisURL} {
		addr := u[strings.Index(u, "//")+2:]
		deadline := time.Now().Add(30 * time.Second)
		for {
			conn, err := net.DialTimeout("tcp", addr, time.Second)
			if err == nil {
				_ = conn.Close()
				break
			}
			if time.Now().After(deadline) {
				return fmt.Errorf("%s does not answer: %w", u, err)
			}
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	return nil
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
			return fmt.Errorf("%s not ready after %v (log %s)", name, limit, c.byName[name].log)
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
		c.mu.Lock()
		c.history = append(c.history, e)
		closing := c.closing
		c.mu.Unlock()
		p := c.byName[e.Proc]
		switch {
		case e.Crash():
			c.log.Error("process exited on its own", "proc", e.Proc, "status", e.Status, "log", p.log)
		case e.Failpoint != "":
			c.log.Info("failpoint", "proc", e.Proc, "point", e.Failpoint)
		}
		if closing || p.role == "nats" || p.role == "redis" {
			continue
		}
		c.restarts.Add(1)
		go func() {
			defer c.restarts.Done()
			time.Sleep(500 * time.Millisecond)
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
			// Holding off NATS and Redis restarts until it is ready: a
			// service whose start-up meets an outage exits (start failed),
			// which an orchestrator answers with another restart but this
			// run would count as a crash.
			c.settle(p, 30*time.Second)
		}()
	}
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
	p := c.byName[name]
	p.stop(sig, 20*time.Second)
	select {
	case <-ctx.Done():
	case <-time.After(down):
	}
	if err := p.start(c.exits); err != nil {
		return err
	}
	return c.waitInfra(ctx)
}

// exitsSoFar returns every exit recorded.
func (c *cluster) exitsSoFar() []Exit {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Exit(nil), c.history...)
}

// allRunning reports whether every process is up and not stopped.
func (c *cluster) allRunning() bool {
	for _, p := range c.procs {
		if _, stopped, ok := p.running(); !ok || stopped {
			return false
		}
	}
	return true
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
	for _, p := range c.procs[:2] {
		p.stop(syscall.SIGTERM, 5*time.Second)
	}
}
