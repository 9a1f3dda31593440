package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/esimflow/esimflow/cmd/esimflow/allinone/allinonetest"
	"github.com/esimflow/esimflow/shared/poll"
)

// allInOne runs the all-in-one in-process with env and returns its base and
// API URLs once /readyz answers 200.
func allInOne(t *testing.T, env map[string]string) (hook, api string) {
	t.Helper()
	env["ESIMFLOW_DATA_DIR"] = t.TempDir()
	sys := allinonetest.Start(t, env)
	return strings.TrimSuffix(sys.Hook, "/webhooks/esim"), sys.API
}

func postEvent(t *testing.T, url, body string) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("POST: %d", resp.StatusCode)
	}
}

// cli runs the operator commands with env as their environment.
func cli(ctx context.Context, out io.Writer, env map[string]string, args ...string) error {
	getenv := func(k string) string { return env[k] }
	root := newRoot()
	root.RemoveCommand(root.Commands()...)
	root.AddCommand(newStatusCmd(getenv), newOrderCmd(getenv), newProfileCmd(getenv))
	root.SetOut(out)
	root.SetErr(out)
	root.SetArgs(args)
	return root.ExecuteContext(ctx)
}

func cliOut(t *testing.T, env map[string]string, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := cli(context.Background(), &out, env, args...)
	return out.String(), err
}

const (
	orderNo = "ORD20261101000001"
	iccid   = "8901000011112222333"
)

// TestOperatorCommands runs status, order and profile against a running
// all-in-one that received an order, an activation and a usage report.
func TestOperatorCommands(t *testing.T) {
	hook, api := allInOne(t, map[string]string{"ESIMFLOW_ADMIN_TOKEN": "adm1n"})
	for _, body := range []string{
		`{"eventType":"ORDER_STATUS","orderNo":"` + orderNo + `","transactionId":"tx-1","status":"GOT_RESOURCE","timestamp":"2026-11-01T08:00:00Z","profiles":[{"iccid":"` + iccid + `","esimTranNo":"E1","status":"GOT_RESOURCE"}]}`,
		`{"eventType":"PROFILE_STATUS","iccid":"` + iccid + `","orderNo":"` + orderNo + `","previousStatus":"GOT_RESOURCE","currentStatus":"ACTIVATED","timestamp":"2026-11-01T09:00:00Z"}`,
		`{"eventType":"DATA_USAGE","iccid":"` + iccid + `","usedVolume":858993459,"totalVolume":1073741824,"usagePercent":80,"timestamp":"2026-11-01T10:00:00Z"}`,
		`{"eventType":"DATA_USAGE","iccid":"` + iccid + `","usedVolume":858993459,"totalVolume":1073741824,"usagePercent":80,"timestamp":"2026-11-01T10:00:00Z"}`,
	} {
		postEvent(t, hook+"/webhooks/esim", body)
	}
	env := map[string]string{"ESIMFLOW_API_URL": api, "ESIMFLOW_ADMIN_TOKEN": "adm1n"}
	// Settled: both consumers have nothing pending and two messages were sent.
	var report statusReport
	poll.Until(t, "events processed and messages sent", func() bool {
		out, err := cliOut(t, env, "status", "--json")
		if err != nil || json.Unmarshal([]byte(out), &report) != nil {
			return false
		}
		lagFree := true
		for _, s := range report.Streams {
			for _, c := range s.Consumers {
				lagFree = lagFree && c.Pending == 0 && c.AckPending == 0
			}
		}
		return lagFree && report.Counters["esimflow_notifications_total"]["sent"] == 2
	})

	t.Run("status --json", func(t *testing.T) {
		if len(report.Services) != 1 || !report.Services[0].Ready || report.Services[0].Checks["nats"] != "ok" {
			t.Errorf("services: %+v", report.Services)
		}
		streams := map[string]uint64{}
		consumers := map[string]string{}
		for _, s := range report.Streams {
			streams[s.Name] = s.Messages
			for _, c := range s.Consumers {
				consumers[c.Name] = s.Name
			}
		}
		// Four posts, one a duplicate JetStream's window drops; two intents.
		if streams["ESIM_EVENTS"] != 3 || streams["ESIM_NOTIFY"] != 2 || streams["ESIM_DLQ"] != 0 {
			t.Errorf("stream counts: %v", streams)
		}
		if consumers["processor"] != "ESIM_EVENTS" || consumers["notifier"] != "ESIM_NOTIFY" {
			t.Errorf("consumers: %v", consumers)
		}
		if w := report.Counters["esimflow_webhooks_received_total"]; w["stored"] != 3 || w["duplicate"] != 1 {
			t.Errorf("webhook counters: %v", w)
		}
	})
	t.Run("status as a table", func(t *testing.T) {
		out, err := cliOut(t, env, "status")
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		for _, want := range []string{"SERVICE API", api, "nats=ok", "ESIM_EVENTS", "processor", "ACK PENDING", "REDELIVERED",
			"dead letters: 0 in ESIM_DLQ", "webhooks received", "duplicate=1", "stored=3", "sent=2"} {
			if !strings.Contains(out, want) {
				t.Errorf("no %q in:\n%s", want, out)
			}
		}
	})
	t.Run("order as a table", func(t *testing.T) {
		out, err := cliOut(t, env, "order", orderNo)
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		for _, want := range []string{"orderNo", orderNo, "tx-1", "GOT_RESOURCE", iccid} {
			if !strings.Contains(out, want) {
				t.Errorf("no %q in:\n%s", want, out)
			}
		}
	})
	t.Run("profile as JSON", func(t *testing.T) {
		out, err := cliOut(t, env, "profile", iccid, "--json")
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		var p struct {
			ICCID, Status, OrderNo string
			UsagePercent           float64
		}
		if err := json.Unmarshal([]byte(out), &p); err != nil || p.ICCID != iccid || p.Status != "ACTIVATED" || p.OrderNo != orderNo || p.UsagePercent != 80 {
			t.Errorf("%v: %+v\n%s", err, p, out)
		}
	})
	t.Run("profile as a table with its history", func(t *testing.T) {
		out, err := cliOut(t, env, "profile", iccid)
		if err != nil {
			t.Fatalf("%v\n%s", err, out)
		}
		for _, want := range []string{"ACTIVATED", "858993459 (819.2 MiB)", "1073741824 (1 GiB)"} {
			if !strings.Contains(out, want) {
				t.Errorf("no %q in:\n%s", want, out)
			}
		}
	})
	t.Run("unknown profile exits non-zero", func(t *testing.T) {
		_, err := cliOut(t, env, "profile", "8900000000000000000")
		if !errors.Is(err, errNotFound) {
			t.Errorf("err = %v, want not found", err)
		}
	})
	t.Run("a wrong token is refused with a hint", func(t *testing.T) {
		_, err := cliOut(t, map[string]string{"ESIMFLOW_API_URL": api}, "order", orderNo, "--token", "wrong")
		if err == nil || !strings.Contains(err.Error(), "401") || !strings.Contains(err.Error(), "ESIMFLOW_ADMIN_TOKEN") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("an unreachable service makes status fail", func(t *testing.T) {
		out, err := cliOut(t, env, "status", "--api", api+",http://127.0.0.1:1")
		if err == nil || !strings.Contains(err.Error(), "127.0.0.1:1") || !strings.Contains(out, "NO") {
			t.Errorf("err = %v\n%s", err, out)
		}
	})
	t.Run("status --watch refreshes until stopped", func(t *testing.T) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		out := &pages{after: 3, stop: cancel}
		if err := cli(ctx, out, env, "status", "--watch", "--interval", "20ms"); err != nil {
			t.Fatal(err)
		}
		if n := strings.Count(out.String(), "esimflow status at"); n < 3 {
			t.Errorf("%d pages, want 3 or more", n)
		}
	})
}

// pages counts the pages --watch writes and stops it after some.
type pages struct {
	mu    sync.Mutex
	buf   bytes.Buffer
	after int
	stop  func()
}

func (p *pages) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	n, err := p.buf.Write(b)
	if strings.Count(p.buf.String(), "esimflow status at") >= p.after {
		p.stop()
	}
	return n, err
}

func (p *pages) String() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.buf.String()
}
