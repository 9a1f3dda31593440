package clustertest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// SystemNATS is where Debian puts nats-server.
const SystemNATS = "/usr/sbin/nats-server"

// NATSOptions describe a JetStream cluster.
type NATSOptions struct {
	// Bin is the nats-server program; default SystemNATS.
	Bin string
	// Dir holds each node's configuration, store (Dir/<name>) and log.
	Dir   string
	Ports *Ports
	// Nodes is the cluster size; default 3.
	Nodes int
	// SyncAlways has each node fsync before it acknowledges
	// (sync_interval: always), where the server supports it (2.10 and newer;
	// SupportsSyncAlways tells).
	SyncAlways bool
}

// NATSNodes writes one configuration file per node into o.Dir and returns
// the nodes: servers n1…nN of cluster "esimflow", routes between them on
// loopback ports, JetStream stored in o.Dir/<name>.
func NATSNodes(o NATSOptions) ([]Node, error) {
	if o.Bin == "" {
		o.Bin = SystemNATS
	}
	if o.Nodes == 0 {
		o.Nodes = 3
	}
	sync := false
	if o.SyncAlways {
		ok, err := SupportsSyncAlways(o.Bin)
		if err != nil {
			return nil, err
		}
		sync = ok
	}
	type ports struct{ client, route int }
	all := make([]ports, o.Nodes)
	var routes []string
	for i := range all {
		c, err := o.Ports.Take()
		if err != nil {
			return nil, err
		}
		r, err := o.Ports.Take()
		if err != nil {
			return nil, err
		}
		all[i] = ports{c, r}
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", r))
	}
	nodes := make([]Node, o.Nodes)
	for i, p := range all {
		name := "n" + strconv.Itoa(i+1)
		dir := filepath.Join(o.Dir, name)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("nats store dir: %w", err)
		}
		var b strings.Builder
		fmt.Fprintf(&b, "server_name: %s\nlisten: 127.0.0.1:%d\n", name, p.client)
		// Peers and clients notice a stopped node within seconds, not the
		// default two minutes.
		b.WriteString("ping_interval: \"2s\"\nping_max: 3\n")
		fmt.Fprintf(&b, "jetstream {\n  store_dir: %q\n", dir)
		if sync {
			b.WriteString("  sync_interval: always\n")
		}
		b.WriteString("}\n")
		fmt.Fprintf(&b, "cluster {\n  name: esimflow\n  listen: 127.0.0.1:%d\n  routes: [\n", p.route)
		for _, r := range routes {
			fmt.Fprintf(&b, "    %s\n", r)
		}
		b.WriteString("  ]\n}\n")
		conf := filepath.Join(o.Dir, name+".conf")
		if err := os.WriteFile(conf, []byte(b.String()), 0o644); err != nil {
			return nil, fmt.Errorf("nats config: %w", err)
		}
		nodes[i] = Node{Name: name, Bin: o.Bin, Args: []string{"-c", conf}, Addr: "127.0.0.1:" + strconv.Itoa(p.client), Dir: dir}
	}
	return nodes, nil
}

var natsVersion = regexp.MustCompile(`v(\d+)\.(\d+)\.(\d+)`)

// SupportsSyncAlways reports whether the nats-server at bin knows
// jetstream { sync_interval: always } (2.10 and newer).
func SupportsSyncAlways(bin string) (bool, error) {
	out, err := exec.Command(bin, "--version").Output()
	if err != nil {
		return false, fmt.Errorf("%s --version: %w", bin, err)
	}
	m := natsVersion.FindStringSubmatch(string(out))
	if m == nil {
		return false, fmt.Errorf("%s --version: no version in %q", bin, out)
	}
	major, _ := strconv.Atoi(m[1])
	minor, _ := strconv.Atoi(m[2])
	return major > 2 || (major == 2 && minor >= 10), nil
}

// URLs returns the client URLs of nodes, comma-separated: what
// ESIMFLOW_NATS_URL takes to know every seed.
func URLs(nodes []Node) string {
	urls := make([]string, len(nodes))
	for i, n := range nodes {
		urls[i] = "nats://" + n.Addr
	}
	return strings.Join(urls, ",")
}

// WaitJetStream waits until every node at urls answers a JetStream request
// (so the meta leader is elected), or ctx ends.
func WaitJetStream(ctx context.Context, urls string) error {
	for _, u := range strings.Split(urls, ",") {
		var last error
		for {
			if last = accountInfo(ctx, u); last == nil {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("jetstream at %s not ready: %w (last: %v)", u, ctx.Err(), last)
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
	return nil
}

// accountInfo asks the server at url alone for the account's JetStream usage.
func accountInfo(ctx context.Context, url string) error {
	nc, err := nats.Connect(url, nats.Timeout(2*time.Second), nats.NoReconnect())
	if err != nil {
		return err
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return err
	}
	actx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	_, err = js.AccountInfo(actx)
	return err
}

// StreamLeader returns the server name of the stream's leader; an error
// while there is none (an election under way).
func StreamLeader(ctx context.Context, js jetstream.JetStream, stream string) (string, error) {
	s, err := js.Stream(ctx, stream)
	if err != nil {
		return "", fmt.Errorf("stream %s: %w", stream, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return "", fmt.Errorf("stream %s info: %w", stream, err)
	}
	if info.Cluster == nil || info.Cluster.Leader == "" {
		return "", fmt.Errorf("stream %s: %w", stream, ErrNoLeader)
	}
	return info.Cluster.Leader, nil
}

// ErrNoLeader is returned while a stream has no leader.
var ErrNoLeader = errors.New("no leader")

// NATS is a running JetStream cluster.
type NATS struct {
	Nodes []*Process
	// URL lists every node: nats://a,nats://b,nats://c.
	URL string
}

// StartNATS starts a cluster and waits until JetStream is ready in it.
func StartNATS(ctx context.Context, o NATSOptions) (*NATS, error) {
	nodes, err := NATSNodes(o)
	if err != nil {
		return nil, err
	}
	n := &NATS{URL: URLs(nodes)}
	for _, node := range nodes {
		p := NewProcess(node, filepath.Join(o.Dir, node.Name+".log"))
		if err := p.Start(); err != nil {
			n.Close()
			return nil, err
		}
		n.Nodes = append(n.Nodes, p)
	}
	for _, p := range n.Nodes {
		if err := p.WaitListening(ctx); err != nil {
			n.Close()
			return nil, err
		}
	}
	if err := WaitJetStream(ctx, n.URL); err != nil {
		n.Close()
		return nil, err
	}
	return n, nil
}

// Node returns the node of the server name, nil if none.
func (n *NATS) Node(name string) *Process {
	for _, p := range n.Nodes {
		if p.Name == name {
			return p
		}
	}
	return nil
}

// Restart starts a node that was killed and waits until it listens.
func (n *NATS) Restart(ctx context.Context, p *Process) error {
	if err := p.Start(); err != nil {
		return err
	}
	return p.WaitListening(ctx)
}

// Close stops every node (SIGTERM, SIGKILL after 5 s).
func (n *NATS) Close() {
	for _, p := range n.Nodes {
		p.StopWith(syscall.SIGTERM, 5*time.Second)
	}
}
