package binaries_test

import (
	"bytes"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/esimflow/esimflow/shared/natstest"
	"github.com/esimflow/esimflow/shared/poll"
	"github.com/esimflow/esimflow/shared/redistest"
	"github.com/esimflow/esimflow/shared/store"
	"github.com/esimflow/esimflow/shared/testns"
)

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// build compiles ingest, processor and notifier into a temporary
// directory and returns it.
func build(t testing.TB) string {
	t.Helper()
	bin := t.TempDir()
	for _, svc := range []string{"ingest", "processor", "notifier"} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(bin, svc), "./"+svc+"/cmd/"+svc)
		cmd.Dir = filepath.Join("..", "..", "..")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("build %s: %v\n%s", svc, err, out)
		}
	}
	return bin
}

// proc is one running service.
type proc struct {
	name  string
	cmd   *exec.Cmd
	out   *syncBuffer
	admin string
}

// startServices runs a process of each named service with env added (and
// an admin listener of its own), waits until each is ready, and kills at
// the end those still running; their output is logged if the test failed.
func startServices(t testing.TB, bin string, svcs []string, env ...string) []*proc {
	t.Helper()
	var procs []*proc
	t.Cleanup(func() {
		for _, p := range procs {
			if p.cmd.ProcessState == nil {
				_ = p.cmd.Process.Kill()
				_ = p.cmd.Wait()
			}
			if t.Failed() {
				t.Logf("%s:\n%s", p.name, p.out.String())
			}
		}
	})
	for _, svc := range svcs {
		p := &proc{name: svc, out: &syncBuffer{}, admin: freeAddr(t)}
		p.cmd = exec.Command(filepath.Join(bin, svc))
		p.cmd.Env = append(append(os.Environ(), env...), "ESIMFLOW_ADMIN_ADDR="+p.admin)
		p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
		if err := p.cmd.Start(); err != nil {
			t.Fatal(err)
		}
		procs = append(procs, p)
		poll.Until(t, svc+" ready", func() bool {
			resp, err := http.Get("http://" + p.admin + "/readyz")
			if err != nil {
				return false
			}
			resp.Body.Close()
			return resp.StatusCode == 200
		})
	}
	return procs
}

// TestSeparateBinaries builds ingest, processor and notifier, runs two
// processors and one of each other against one NATS and Redis, sends a
// lifecycle, reads the result from each service's own API, and stops them
// all with SIGTERM: each must exit 0.
func TestSeparateBinaries(t *testing.T) {
	if testing.Short() {
		t.Skip("builds binaries")
	}
	redisURL := redistest.URL(t)
	srv := natstest.Start(t)
	ns := testns.New(t)
	bin := build(t)
	srv.RemoveNamespace(t, ns)
	redistest.RemovePrefix(t, redistest.Client(t), ns)
	hook := freeAddr(t)
	procs := startServices(t, bin, []string{"ingest", "processor", "processor", "notifier"},
		"ESIMFLOW_NATS_URL="+srv.URL, "ESIMFLOW_REDIS_URL="+redisURL, "ESIMFLOW_NAMESPACE="+ns, "ESIMFLOW_HTTP_ADDR="+hook)

	iccid := "8901000011112222"
	for _, body := range []string{
		`{"eventType":"ORDER_STATUS","orderNo":"ORDB1","transactionId":"txB1","status":"GOT_RESOURCE","timestamp":"2026-11-01T08:00:00Z","profiles":[{"iccid":"` + iccid + `","status":"GOT_RESOURCE"}]}`,
		`{"eventType":"PROFILE_STATUS","iccid":"` + iccid + `","orderNo":"ORDB1","currentStatus":"ACTIVATED","timestamp":"2026-11-01T09:00:00Z"}`,
		`{"eventType":"DATA_USAGE","iccid":"` + iccid + `","usedVolume":100,"totalVolume":100,"usagePercent":100,"timestamp":"2026-11-02T09:00:00Z"}`,
	} {
		resp, err := http.Post("http://"+hook+"/webhooks/esim", "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("POST: status %d", resp.StatusCode)
		}
	}
	processor, notifier := procs[1], procs[3]
	poll.Until(t, "the profile merged", func() bool {
		var p store.Profile
		return getJSON("http://"+processor.admin+"/v1/profiles/"+iccid, &p) == 200 && p.Status == "ACTIVATED" && p.UsagePercent == 100 && p.TransactionID == "txB1"
	})
	poll.Until(t, "both messages sent", func() bool {
		var n struct{ Notifications []store.Notification }
		getJSON("http://"+notifier.admin+"/v1/notifications?iccid="+iccid, &n)
		return len(n.Notifications) == 2
	})
	// Each service serves only the routes of what it owns.
	if code := getJSON("http://"+procs[0].admin+"/v1/profiles/"+iccid, nil); code != 404 {
		t.Errorf("ingest served a profile route: %d", code)
	}
	if !strings.Contains(notifier.out.String(), "NOTIFY id=activation:"+iccid) {
		t.Errorf("notifier printed no activation:\n%s", notifier.out.String())
	}

	for _, p := range procs {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
	}
	for _, p := range procs {
		if err := p.cmd.Wait(); err != nil {
			t.Errorf("%s did not stop cleanly on SIGTERM: %v\n%s", p.name, err, p.out.String())
		}
	}
}

func getJSON(url string, v any) int {
	resp, err := http.Get(url)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	if v != nil && resp.StatusCode == 200 {
		b, _ := io.ReadAll(resp.Body)
		if json.Unmarshal(b, v) != nil {
			return 0
		}
	}
	return resp.StatusCode
}
