package chaos

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/esimflow/esimflow/shared/poll"
)

func TestBindFailureIn(t *testing.T) {
	p := &proc{addrs: []string{"127.0.0.1:20001", "127.0.0.1:20002"}}
	for _, tt := range []struct{ name, log, want string }{
		{"go", `level=ERROR msg="admin server" err="listen tcp 127.0.0.1:23456: bind: address already in use"`, "127.0.0.1:23456"},
		{"nats-server", `[FTL] Error listening on port: 127.0.0.1:23457, "listen tcp 127.0.0.1:23457: bind: address already in use"`, "127.0.0.1:23457"},
		{"redis-server", `# Warning: Could not create server TCP listening socket 127.0.0.1:23458: bind: Address already in use`, "127.0.0.1:23458"},
		{"no address named", `bind: address already in use`, "127.0.0.1:20001, 127.0.0.1:20002"},
		{"another failure", `panic: boom`, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := p.bindFailureIn([]byte(tt.log)); got != tt.want {
				t.Errorf("= %q, want %q", got, tt.want)
			}
		})
	}
}

// TestBindFailureRetried: a service that cannot bind is restarted, its
// exits are no crashes, and once the port is free it runs.
func TestBindFailureRetried(t *testing.T) {
	c := testCluster(t, 20*time.Second)
	// Fails to bind twice, then runs.
	count := filepath.Join(t.TempDir(), "starts")
	p := fakeService(t, c, `n=$(cat `+count+` 2>/dev/null || echo 0); echo $((n+1)) > `+count+`
if [ "$n" -lt 2 ]; then echo 'listen tcp 127.0.0.1:23456: bind: address already in use'; exit 1; fi
exec sleep 60`)
	if err := p.start(c.exits); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, "the third start running", func() bool {
		b, _ := os.ReadFile(count)
		_, _, running := p.running()
		return strings.TrimSpace(string(b)) == "3" && running
	})
	for _, e := range c.exitsSoFar() {
		if e.Crash() || e.Bind != "127.0.0.1:23456" {
			t.Errorf("exit %+v: want a failed bind of 127.0.0.1:23456, not a crash", e)
		}
	}
	if n := len(c.exitsSoFar()); n != 2 {
		t.Errorf("%d exits, want 2", n)
	}
	if why := c.gaveUp(); len(why) != 0 {
		t.Errorf("given up: %v", why)
	}
}

// TestBindFailureGivenUp: a service that never binds is restarted for the
// bind limit, then left down and reported with its address.
func TestBindFailureGivenUp(t *testing.T) {
	c := testCluster(t, 2*time.Second)
	p := fakeService(t, c, `echo 'listen tcp 127.0.0.1:23456: bind: address already in use'; exit 1`)
	if err := p.start(c.exits); err != nil {
		t.Fatal(err)
	}
	var why []string
	poll.Until(t, "the service given up on", func() bool {
		why = c.gaveUp()
		return len(why) > 0
	})
	if len(why) != 1 || !strings.Contains(why[0], "fake-1 could not bind 127.0.0.1:23456") {
		t.Errorf("gave up: %q", why)
	}
	exits := c.exitsSoFar()
	if len(exits) < 3 {
		t.Errorf("%d starts before giving up, want several", len(exits))
	}
	for _, e := range exits {
		if e.Crash() {
			t.Errorf("counted as a crash: %+v", e)
		}
	}
	if d := c.down(); d != "" {
		t.Errorf("down() = %q; a process given up on is reported under CheckBind, not waited for", d)
	}
}

// testCluster is a cluster with no processes yet, its supervisor running.
func testCluster(t *testing.T, bindLimit time.Duration) *cluster {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o755); err != nil {
		t.Fatal(err)
	}
	c := &cluster{dir: dir, byName: map[string]*proc{}, admin: map[string]string{}, exits: make(chan Exit, 64),
		log: slog.New(slog.NewTextHandler(io.Discard, nil)), binding: map[string]time.Time{}, unbound: map[string]string{},
		bindLimit: bindLimit}
	go c.supervise()
	t.Cleanup(c.close)
	return c
}

// fakeService adds a service running script with sh, ready as soon as it runs.
func fakeService(t *testing.T, c *cluster, script string) *proc {
	ready := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	t.Cleanup(ready.Close)
	p := &proc{name: "fake-1", role: "fake", bin: "/bin/sh", args: []string{"-c", script}, addrs: []string{"127.0.0.1:23456"}}
	c.add(p)
	c.admin[p.name] = ready.URL
	return p
}
