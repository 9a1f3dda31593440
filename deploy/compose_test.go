package deploy_test

import (
	"context"
	"net"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/compose-spec/compose-go/v2/loader"
	"github.com/compose-spec/compose-go/v2/types"
	"github.com/esimflow/esimflow/shared/config"
	"go.yaml.in/yaml/v3"
)

// loadCompose loads docker-compose.yml as `docker compose` does, every
// profile on, with secrets written by deploy/secrets/generate.sh (as `make
// secrets` does) into a folder of the test's own.
func loadCompose(t *testing.T) *types.Project {
	t.Helper()
	dir, err := filepath.Abs(root)
	if err != nil {
		t.Fatal(err)
	}
	secrets := t.TempDir()
	if out, err := exec.Command("sh", filepath.Join(dir, "deploy", "secrets", "generate.sh"), secrets).CombinedOutput(); err != nil {
		t.Fatalf("deploy/secrets/generate.sh: %v\n%s", err, out)
	}
	p, err := loader.LoadWithContext(context.Background(), types.ConfigDetails{
		WorkingDir:  dir,
		ConfigFiles: []types.ConfigFile{{Filename: filepath.Join(dir, "docker-compose.yml")}},
		Environment: types.Mapping{"ESIMFLOW_SECRETS_DIR": secrets},
	}, func(o *loader.Options) {
		o.SetProjectName("esimflow", true)
		o.Profiles = []string{"*"}
	})
	if err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	return p
}

// esimflowEnv returns a service's ESIMFLOW_* variables, failing on any
// variable the code does not read.
func esimflowEnv(t *testing.T, name string, svc types.ServiceConfig) map[string]string {
	t.Helper()
	known := map[string]bool{}
	for _, s := range config.Settings() {
		known[s.Env] = true
	}
	env := map[string]string{}
	for k, v := range svc.Environment {
		if !strings.HasPrefix(k, "ESIMFLOW_") {
			continue
		}
		if !known[k] {
			t.Errorf("%s: environment %s is not a setting of shared/config", name, k)
		}
		if v != nil {
			env[k] = *v
		}
	}
	return env
}

// port returns the port of a listen address such as ":8081".
func port(t *testing.T, addr string) string {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("address %q: %v", addr, err)
	}
	return p
}

// cliCommands are the esimflow CLI's commands, read from their Use lines.
func cliCommands(t *testing.T) []string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(root, "cmd", "esimflow", "*.go"))
	use := regexp.MustCompile(`Use:\s+"(\w+)`)
	var out []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range use.FindAllSubmatch(b, -1) {
			out = append(out, string(m[1]))
		}
	}
	return out
}

// TestCompose checks docker-compose.yml against the code: each esimflow
// service runs the image built from its Dockerfile, sets only settings the
// code reads with values it accepts, publishes the ports those settings
// listen on, and is scraped by Prometheus on its admin port; the cluster is
// three JetStream NATS servers routed to each other and a Redis with AOF.
func TestCompose(t *testing.T) {
	p := loadCompose(t)
	count := map[string]int{}
	targets := map[string]bool{} // host:port Prometheus must scrape
	adminOf := map[string]string{}
	for name, svc := range p.Services {
		image, tag, _ := strings.Cut(svc.Image, ":")
		bin, ok := strings.CutPrefix(image, "esimflow/")
		if !ok {
			continue
		}
		count[bin]++
		if tag == "" || svc.Build == nil || svc.Build.Dockerfile != "deploy/"+bin+"/Dockerfile" || svc.Build.Context != p.WorkingDir {
			t.Errorf("%s: image %s built from %+v, want deploy/%s/Dockerfile in the repository root", name, svc.Image, svc.Build, bin)
		}
		if _, err := os.Stat(filepath.Join(root, "deploy", bin, "Dockerfile")); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		env := esimflowEnv(t, name, svc)
		if bin == "esimflow" {
			checkCLIService(t, name, svc)
			continue
		}
		// The image's ENTRYPOINT is the service binary (TestDockerfiles);
		// a command here would become its arguments, which it ignores.
		if len(svc.Command) > 0 || len(svc.Entrypoint) > 0 {
			t.Errorf("%s: command %v entrypoint %v, want the image's", name, svc.Command, svc.Entrypoint)
		}
		cfg, err := config.Load(func(k string) string { return env[k] })
		if err != nil {
			t.Errorf("%s: the service would refuse its configuration: %v", name, err)
			continue
		}
		if cfg.Replicas != 3 {
			t.Errorf("%s: ESIMFLOW_STREAM_REPLICAS=%d on a 3-node cluster", name, cfg.Replicas)
		}
		for _, u := range strings.Split(cfg.NATS.URL, ",") {
			if h := hostOf(t, u); !strings.HasPrefix(h, "nats-") || p.Services[h].Name == "" {
				t.Errorf("%s: NATS URL %s names no NATS service of the file", name, u)
			}
		}
		checkRedisSeeds(t, p, name, cfg.Store.URL)
		admin, httpPort := port(t, cfg.Admin.Addr), port(t, cfg.Ingest.HTTPAddr)
		adminOf[name] = admin
		targets[name+":"+admin] = true
		for _, pc := range svc.Ports {
			switch {
			case pc.Target == atoi(admin):
			case bin == "ingest" && pc.Target == atoi(httpPort):
			default:
				t.Errorf("%s: publishes container port %d, which it does not listen on (admin %s, http %s)", name, pc.Target, admin, httpPort)
			}
		}
	}
	if count["ingest"] != 2 || count["processor"] != 2 || count["notifier"] != 1 || count["esimflow"] != 1 {
		t.Errorf("esimflow services by image: %v, want 2 ingest, 2 processor, 1 notifier and the CLI", count)
	}

	// The curls of docs/operations.md (docker compose): webhooks on
	// localhost:8080, the state API on 8081.
	published := map[string]string{} // host port → service:container port
	for name, svc := range p.Services {
		for _, pc := range svc.Ports {
			published[pc.Published] = name + ":" + strconv.Itoa(int(pc.Target))
		}
	}
	if !strings.HasPrefix(published["8080"], "ingest-") || published["8080"] != strings.Split(published["8080"], ":")[0]+":8080" {
		t.Errorf("host port 8080 → %q, want an ingest's webhook port", published["8080"])
	}
	if s := published["8081"]; !strings.HasPrefix(s, "processor-") {
		t.Errorf("host port 8081 → %q, want a processor's API (orders, profiles)", s)
	}

	checkNATSCluster(t, p)
	checkRedisCluster(t, p)
	var catcher bool
	for _, svc := range p.Services {
		catcher = catcher || strings.HasPrefix(svc.Image, "axllent/mailpit")
	}
	if !catcher {
		t.Error("no SMTP catcher for development email")
	}
	checkPrometheus(t, p, targets)
	checkMounts(t, p)
	checkExposure(t, p)
}

// checkExposure: only ingest's webhook port is published beyond loopback,
// every esimflow service has an admin token and ingest its path tokens from
// the generated secrets, and Grafana's password is not a default.
func checkExposure(t *testing.T, p *types.Project) {
	t.Helper()
	for name, svc := range p.Services {
		bin, isESIMflow := strings.CutPrefix(strings.Split(svc.Image, ":")[0], "esimflow/")
		for _, pc := range svc.Ports {
			webhook := bin == "ingest" && pc.Target == 8080
			if !webhook && pc.HostIP != "127.0.0.1" {
				t.Errorf("%s: publishes %d on %q, want 127.0.0.1 (only ingest's webhook port is public)", name, pc.Target, pc.HostIP)
			}
		}
		if !isESIMflow {
			continue
		}
		if tok := svc.Environment["ESIMFLOW_ADMIN_TOKEN"]; tok == nil || len(*tok) < 32 {
			t.Errorf("%s: no admin token from the secrets file", name)
		}
		if tok := svc.Environment["ESIMFLOW_INGEST_TOKENS"]; bin == "ingest" && (tok == nil || len(*tok) < 32) {
			t.Errorf("%s: no path token from the secrets file", name)
		} else if bin != "ingest" && tok != nil {
			t.Errorf("%s: gets ingest's path tokens, which it does not need", name)
		}
	}
	if pw := p.Services["grafana"].Environment["GF_SECURITY_ADMIN_PASSWORD"]; pw == nil || len(*pw) < 32 {
		t.Error("grafana: no generated admin password")
	}
}

// TestSecretsGenerator: `make secrets` writes owner-only files and keeps
// them on a second run, so a restart never rotates tokens by surprise.
func TestSecretsGenerator(t *testing.T) {
	dir := t.TempDir()
	gen := filepath.Join(root, "deploy", "secrets", "generate.sh")
	read := func() map[string]string {
		out := map[string]string{}
		for _, f := range []string{"admin.env", "ingest.env", "grafana.env"} {
			fi, err := os.Stat(filepath.Join(dir, f))
			if err != nil {
				t.Fatal(err)
			}
			if fi.Mode().Perm() != 0o600 {
				t.Errorf("%s: mode %v, want 0600", f, fi.Mode().Perm())
			}
			b, _ := os.ReadFile(filepath.Join(dir, f))
			out[f] = string(b)
		}
		return out
	}
	for range 2 {
		if out, err := exec.Command("sh", gen, dir).CombinedOutput(); err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
	}
	first := read()
	if out, err := exec.Command("sh", gen, dir).CombinedOutput(); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if second := read(); first["admin.env"] != second["admin.env"] {
		t.Error("a second run changed the admin token")
	}
	if first["admin.env"] == first["ingest.env"] {
		t.Error("the same token twice")
	}
}

func checkNATSCluster(t *testing.T, p *types.Project) {
	t.Helper()
	var nats []string
	for name := range p.Services {
		if strings.HasPrefix(name, "nats-") {
			nats = append(nats, name)
		}
	}
	slices.Sort(nats)
	if len(nats) != 3 {
		t.Fatalf("NATS services %v, want 3", nats)
	}
	for _, name := range nats {
		args := p.Services[name].Command
		flag := func(f string) string {
			if i := slices.Index(args, f); i >= 0 && i+1 < len(args) {
				return args[i+1]
			}
			return ""
		}
		if !slices.Contains(args, "--jetstream") || flag("--name") != name || flag("--cluster_name") == "" {
			t.Errorf("%s: command %v, want --jetstream, --name %s and a --cluster_name", name, args, name)
		}
		var routed []string
		for _, r := range strings.Split(flag("--routes"), ",") {
			routed = append(routed, hostOf(t, r))
		}
		slices.Sort(routed)
		if !slices.Equal(routed, nats) {
			t.Errorf("%s: routes to %v, want %v", name, routed, nats)
		}
	}
}

// checkRedisSeeds: a service's ESIMFLOW_REDIS_URL is a Redis Cluster URL
// whose seeds are the file's six Redis nodes.
func checkRedisSeeds(t *testing.T, p *types.Project, name, raw string) {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "redis+cluster" {
		t.Errorf("%s: Redis URL %s, want redis+cluster://", name, raw)
		return
	}
	var seeds []string
	for _, hp := range strings.Split(u.Host, ",") {
		h, _, err := net.SplitHostPort(hp)
		if err != nil || p.Services[h].Name == "" {
			t.Errorf("%s: Redis seed %s names no service of the file", name, hp)
		}
		seeds = append(seeds, h)
	}
	if len(seeds) != 6 {
		t.Errorf("%s: Redis seeds %v, want the six nodes", name, seeds)
	}
}

// checkRedisCluster: six cluster-enabled Redis nodes with AOF and
// noeviction, each announcing its own name, and a one-shot service that
// joins them as three primaries with a replica each, which the esimflow
// services wait for.
func checkRedisCluster(t *testing.T, p *types.Project) {
	t.Helper()
	for i := 1; i <= 6; i++ {
		name := "redis-" + strconv.Itoa(i)
		cmd := strings.Join(p.Services[name].Command, " ")
		for _, want := range []string{"--appendonly yes", "--maxmemory-policy noeviction", "--cluster-enabled yes", "--cluster-announce-hostname " + name} {
			if !strings.Contains(cmd, want) {
				t.Errorf("%s: command %q lacks %s", name, cmd, want)
			}
		}
	}
	init := p.Services["redis-cluster"]
	if cmd := strings.Join(init.Command, " "); !strings.Contains(cmd, "--cluster create") || !strings.Contains(cmd, "--cluster-replicas 1") {
		t.Errorf("redis-cluster: command %q, want redis-cli --cluster create … --cluster-replicas 1", cmd)
	}
	for name, svc := range p.Services {
		if !strings.HasPrefix(svc.Image, "esimflow/") || name == "cli" {
			continue
		}
		if d, ok := svc.DependsOn["redis-cluster"]; !ok || d.Condition != types.ServiceConditionCompletedSuccessfully {
			t.Errorf("%s: does not wait for the Redis Cluster to be formed", name)
		}
	}
}

// checkCLIService: the CLI service runs a real command against the services'
// admin ports.
func checkCLIService(t *testing.T, name string, svc types.ServiceConfig) {
	t.Helper()
	if len(svc.Command) == 0 || !slices.Contains(cliCommands(t), svc.Command[0]) {
		t.Errorf("%s: command %v, want one of the CLI's %v", name, svc.Command, cliCommands(t))
		return
	}
	if i := slices.Index(svc.Command, "--api"); i >= 0 {
		for _, u := range strings.Split(svc.Command[i+1], ",") {
			pu, err := url.Parse(u)
			if err != nil || pu.Port() != "8081" {
				t.Errorf("%s: --api %s, want services' admin port 8081", name, u)
			}
		}
	}
}

func checkPrometheus(t *testing.T, p *types.Project, want map[string]bool) {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "deploy", "prometheus", "prometheus.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		ScrapeConfigs []struct {
			JobName       string `yaml:"job_name"`
			MetricsPath   string `yaml:"metrics_path"`
			StaticConfigs []struct {
				Targets []string `yaml:"targets"`
			} `yaml:"static_configs"`
		} `yaml:"scrape_configs"`
	}
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, sc := range cfg.ScrapeConfigs {
		if sc.MetricsPath != "" && sc.MetricsPath != "/metrics" {
			t.Errorf("job %s scrapes %s, the services serve /metrics", sc.JobName, sc.MetricsPath)
		}
		for _, s := range sc.StaticConfigs {
			for _, tg := range s.Targets {
				got[tg] = true
			}
		}
	}
	for tg := range want {
		if !got[tg] {
			t.Errorf("Prometheus does not scrape %s", tg)
		}
	}
	for tg := range got {
		if !want[tg] {
			t.Errorf("Prometheus scrapes %s, which is no esimflow service's admin port", tg)
		}
	}
}

// checkMounts: every file or folder bind-mounted from the repository exists.
func checkMounts(t *testing.T, p *types.Project) {
	t.Helper()
	for name, svc := range p.Services {
		for _, v := range svc.Volumes {
			if v.Type != types.VolumeTypeBind {
				continue
			}
			if _, err := os.Stat(v.Source); err != nil {
				t.Errorf("%s: mounts %s: %v", name, v.Source, err)
			}
		}
	}
}

func hostOf(t *testing.T, raw string) string {
	t.Helper()
	u, err := url.Parse(strings.TrimSpace(raw))
	if err != nil {
		t.Fatalf("%q: %v", raw, err)
	}
	return u.Hostname()
}

func atoi(s string) uint32 {
	n, _ := strconv.ParseUint(s, 10, 32)
	return uint32(n)
}
