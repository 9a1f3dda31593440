package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/esimflow/esimflow/shared/poll"
	"github.com/esimflow/esimflow/shared/redistest"
	"github.com/esimflow/esimflow/shared/testns"
)

func (s *system) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := http.Get(s.API + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// state reads the orders and their profiles through the API.
func (s *system) state(t *testing.T, orders []string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for _, o := range orders {
		code, body := s.get(t, "/v1/orders/"+o)
		if code != 200 {
			t.Fatalf("order %s: %d %s", o, code, body)
		}
		out[o] = body
		var v struct{ Profiles []string }
		if err := json.Unmarshal([]byte(body), &v); err != nil {
			t.Fatal(err)
		}
		for _, p := range v.Profiles {
			_, out[p] = s.get(t, "/v1/profiles/"+p)
		}
	}
	return out
}

var lagLine = regexp.MustCompile(`(?m)^esimflow_consumer_(lag|ack_pending)\{consumer="[^"]+"\} (\S+)$`)

// quiet reports whether both consumers have nothing pending or unacked.
func (s *system) quiet(t *testing.T) bool {
	_, m := s.get(t, "/metrics")
	found := lagLine.FindAllStringSubmatch(m, -1)
	for _, x := range found {
		if x[2] != "0" {
			return false
		}
	}
	return len(found) == 4
}

var notifyLine = regexp.MustCompile(`NOTIFY id=(\S+)`)

// TestReplayCommand is the operator's recovery from a lost Redis: the
// all-in-one stopped, Redis's keys gone, `esimflow replay` from the embedded
// NATS data, the all-in-one started again: the same state, no customer
// message sent again, and a late provider retry still recognised.
func TestReplayCommand(t *testing.T) {
	url := redistest.URL(t)
	ns := testns.New(t)
	c := redistest.Client(t)
	redistest.RemovePrefix(t, c, ns)
	env := map[string]string{"ESIMFLOW_DATA_DIR": t.TempDir(), "ESIMFLOW_REDIS_URL": url, "ESIMFLOW_NAMESPACE": ns}
	sys := startSystem(t, env)

	var orders, bodies []string
	for o := range 5 {
		orderNo := fmt.Sprintf("R%04d", o)
		orders = append(orders, orderNo)
		bodies = append(bodies, fmt.Sprintf(`{"eventType":"ORDER_STATUS","orderNo":%q,"transactionId":"tx","status":"GOT_RESOURCE","timestamp":"2026-11-01T08:00:00Z",`+
			`"profiles":[{"iccid":"8901%04d0000","status":"GOT_RESOURCE"},{"iccid":"8901%04d0001","status":"GOT_RESOURCE"}]}`, orderNo, o, o))
		for p := range 2 {
			iccid := fmt.Sprintf("8901%04d%04d", o, p)
			bodies = append(bodies,
				fmt.Sprintf(`{"eventType":"PROFILE_STATUS","iccid":%q,"orderNo":%q,"currentStatus":"ACTIVATED","timestamp":"2026-11-01T09:00:00Z"}`, iccid, orderNo),
				fmt.Sprintf(`{"eventType":"DATA_USAGE","iccid":%q,"usedVolume":800,"totalVolume":1000,"usagePercent":80,"timestamp":"2026-11-01T10:00:00Z"}`, iccid))
		}
	}
	for _, b := range bodies {
		sys.post(t, b)
	}
	poll.Until(t, "every message sent", func() bool { return len(notifyLine.FindAllString(sys.Messages.String(), -1)) == 20 })
	poll.Until(t, "state settled", func() bool {
		code, body := sys.get(t, "/v1/profiles/890100040001")
		return code == 200 && strings.Contains(body, `"usagePercent":80`)
	})
	before := sys.state(t, orders)
	sys.Stop()

	// Redis is lost.
	ctx := context.Background()
	iter := c.Scan(ctx, 0, "esimflow:"+ns+":*", 1000).Iterator()
	for iter.Next(ctx) {
		c.Del(ctx, iter.Val())
	}
	cli := maps.Clone(env)
	cli["ESIMFLOW_API_URL"] = sys.API // nothing answers there now
	out, errOut, err := run(t, cli, "", "replay")
	if err != nil || !strings.Contains(out, "replayed 25 events: 25 merged") || !strings.Contains(errOut, "25/25") {
		t.Fatalf("replay: %v\nout: %s\nerr: %s", err, out, errOut)
	}

	again := startSystem(t, env)
	if after := again.state(t, orders); !maps.Equal(after, before) {
		t.Errorf("state after replay:\n%v\nbefore:\n%v", after, before)
	}
	again.post(t, bodies[1]) // a provider retry
	poll.Until(t, "the consumers drained", func() bool { return again.quiet(t) })
	if msgs := again.Messages.String(); msgs != "" {
		t.Errorf("messages sent again after the replay:\n%s", msgs)
	}
}

func TestReplayFlags(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	for _, tt := range []struct {
		in   string
		want time.Time
		ok   bool
	}{
		{"2026-11-01T00:00:00Z", time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC), true},
		{"24h", now.Add(-24 * time.Hour), true},
		{"yesterday", time.Time{}, false},
		{"-5m", time.Time{}, false},
	} {
		got, err := parseSince(tt.in, now)
		if (err == nil) != tt.ok || !got.Equal(tt.want) {
			t.Errorf("parseSince(%q) = %v, %v", tt.in, got, err)
		}
	}
	if _, _, err := run(t, map[string]string{}, "", "replay", "--since", "1h", "--from-seq", "3"); err == nil || !strings.Contains(err.Error(), "give one") {
		t.Errorf("both flags: %v", err)
	}
	// The embedded NATS data takes one server at a time: an all-in-one that
	// answers stops the replay before it opens anything.
	running := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	defer running.Close()
	dir := t.TempDir()
	_, _, err := run(t, map[string]string{"ESIMFLOW_API_URL": running.URL, "ESIMFLOW_DATA_DIR": dir}, "", "replay")
	if err == nil || !strings.Contains(err.Error(), "stop it first") {
		t.Errorf("replay next to a running all-in-one: %v", err)
	}
}
