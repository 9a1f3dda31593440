package allinone_test

import (
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/esimflow/esimflow/cmd/esimflow/allinone/allinonetest"
	"github.com/esimflow/esimflow/shared/clustertest"
	"github.com/esimflow/esimflow/shared/natstest"
	"github.com/esimflow/esimflow/shared/poll"
	"github.com/esimflow/esimflow/shared/redistest"
	"github.com/esimflow/esimflow/shared/store"
	"github.com/esimflow/esimflow/shared/testns"
)

var start = allinonetest.Start

// lifecycle is the provider's events for orders of eSIMs: order with its
// profiles (GOT_RESOURCE), activation, usage at 50, 80 and 100 %.
func lifecycle(orders, perOrder int) (bodies []string, iccids []string) {
	t0 := time.Date(2026, 11, 1, 8, 0, 0, 0, time.UTC)
	for o := range orders {
		orderNo := fmt.Sprintf("ORD%04d", o)
		var profiles []map[string]any
		for p := range perOrder {
			iccid := fmt.Sprintf("8901%04d%04d", o, p)
			iccids = append(iccids, iccid)
			profiles = append(profiles, map[string]any{"iccid": iccid, "esimTranNo": "E" + iccid, "status": "GOT_RESOURCE"})
			at := func(m int) string { return t0.Add(time.Duration(o*60+p*5+m) * time.Minute).Format(time.RFC3339) }
			bodies = append(bodies, mustJSON(map[string]any{"eventType": "PROFILE_STATUS", "iccid": iccid, "orderNo": orderNo,
				"previousStatus": "GOT_RESOURCE", "currentStatus": "ACTIVATED", "timestamp": at(1)}))
			for i, pct := range []int{50, 80, 100} {
				total := 1 << 30
				bodies = append(bodies, mustJSON(map[string]any{"eventType": "DATA_USAGE", "iccid": iccid,
					"usedVolume": total / 100 * pct, "totalVolume": total, "usagePercent": pct, "timestamp": at(2 + i)}))
			}
		}
		bodies = append(bodies, mustJSON(map[string]any{"eventType": "ORDER_STATUS", "orderNo": orderNo,
			"transactionId": "tx-" + orderNo, "status": "GOT_RESOURCE", "timestamp": t0.Format(time.RFC3339), "profiles": profiles}))
	}
	return bodies, iccids
}

// activationID is the activation intent id of an eSIM of lifecycle: its
// subscription is the ICCID with the order its PROFILE_STATUS names
// (docs/design.md, "Invariants" 3); its usage names none, so its low-data
// ids carry the ICCID alone, and its first bundle.
func activationID(iccid string) string { return "activation:" + iccid + ".oORD" + iccid[4:8] }

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// postAll sends the bodies from 8 connections at once, retrying what is not
// answered 200 — as the provider does.
func postAll(t testing.TB, url string, bodies []string) {
	t.Helper()
	work := make(chan string)
	var wg sync.WaitGroup
	var failed sync.Map
	for range 8 {
		wg.Go(func() {
			for body := range work {
				for attempt := 0; ; attempt++ {
					resp, err := http.Post(url, "application/json", strings.NewReader(body))
					if err == nil {
						io.Copy(io.Discard, resp.Body)
						resp.Body.Close()
						if resp.StatusCode == 200 {
							break
						}
					}
					if attempt == 20 {
						failed.Store(body, fmt.Sprint(err, resp))
						break
					}
					time.Sleep(100 * time.Millisecond)
				}
			}
		})
	}
	for _, b := range bodies {
		work <- b
	}
	close(work)
	wg.Wait()
	failed.Range(func(k, v any) bool { t.Errorf("never answered 200: %s (%v)", k, v); return true })
}

func getJSON(t testing.TB, url string, v any) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if v != nil && resp.StatusCode == 200 {
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatalf("decode %s: %v", url, err)
		}
	}
	return resp.StatusCode
}

var notifyLine = regexp.MustCompile(`NOTIFY id=(\S+) kind=(\S+) iccid=(\S+)`)

// runPipeline is the end-to-end scenario: 50 eSIMs' lifecycles with 20 %
// duplicates, shuffled and sent concurrently; then the state through the API
// and the customer messages on the console channel.
func runPipeline(t *testing.T, env map[string]string) {
	sys := start(t, env)
	bodies, iccids := lifecycle(10, 5)
	r := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 1))
	withDups := append([]string(nil), bodies...)
	for _, b := range bodies {
		if r.IntN(5) == 0 {
			withDups = append(withDups, b)
		}
	}
	r.Shuffle(len(withDups), func(i, j int) { withDups[i], withDups[j] = withDups[j], withDups[i] })
	t.Logf("sending %d events (%d distinct) for %d eSIMs", len(withDups), len(bodies), len(iccids))
	postAll(t, sys.Hook, withDups)

	// Every profile ends activated at 100 %, linked to its order.
	poll.Until(t, "all profiles merged and notified", func() bool {
		for _, iccid := range iccids {
			var p store.Profile
			if getJSON(t, sys.API+"/v1/profiles/"+iccid, &p) != 200 || p.Status != "ACTIVATED" || p.UsagePercent != 100 || p.TransactionID == "" {
				return false
			}
			var n struct{ Notifications []store.Notification }
			getJSON(t, sys.API+"/v1/notifications?iccid="+iccid, &n)
			sent := map[string]bool{}
			for _, e := range n.Notifications {
				sent[e.ID] = sent[e.ID] || e.Status == "sent"
			}
			if !sent[activationID(iccid)] || !sent["low_data:"+iccid+":1G:100"] {
				return false
			}
		}
		return true
	})
	waitForQuiet(t, sys.API)

	for o := range 10 {
		orderNo := fmt.Sprintf("ORD%04d", o)
		var got store.Order
		if code := getJSON(t, sys.API+"/v1/orders/"+orderNo, &got); code != 200 {
			t.Fatalf("order %s: status %d", orderNo, code)
		}
		if got.Status != "GOT_RESOURCE" || got.TransactionID != "tx-"+orderNo || len(got.Profiles) != 5 {
			t.Errorf("order %s = %+v", orderNo, got)
		}
	}
	var p store.Profile
	getJSON(t, sys.API+"/v1/profiles/"+iccids[0], &p)
	if p.OrderNo != "ORD0000" || p.PreviousStatus != "GOT_RESOURCE" || p.EsimTranNo != "E"+iccids[0] || p.UsedVolume != (1<<30)/100*100 {
		t.Errorf("profile %s = %+v", iccids[0], p)
	}
	if code := getJSON(t, sys.API+"/v1/profiles/nope", nil); code != 404 {
		t.Errorf("unknown profile: status %d, want 404", code)
	}

	// Customer messages: one activation and one 100 % each; an 80 % warning at
	// most once, and never after the 100 % one.
	count := map[string]int{}
	pos := map[string]int{}
	for i, m := range notifyLine.FindAllStringSubmatch(sys.Messages.String(), -1) {
		count[m[1]]++
		pos[m[1]] = i
	}
	for _, iccid := range iccids {
		act, full, warn := activationID(iccid), "low_data:"+iccid+":1G:100", "low_data:"+iccid+":1G:80"
		if count[act] != 1 || count[full] != 1 || count[warn] > 1 {
			t.Errorf("%s: activation×%d, 100%%×%d, 80%%×%d", iccid, count[act], count[full], count[warn])
		}
		if count[warn] == 1 && pos[warn] > pos[full] {
			t.Errorf("%s: the 80%% warning came after the 100%% one", iccid)
		}
	}
	if t.Failed() {
		t.Logf("messages:\n%s", sys.Messages.String())
	}
}

// waitForQuiet waits until both consumers have nothing pending or unacked.
func waitForQuiet(t *testing.T, api string) {
	t.Helper()
	re := regexp.MustCompile(`(?m)^esimflow_consumer_(lag|ack_pending)\{consumer="[^"]+"\} (\S+)$`)
	poll.Until(t, "consumers drained", func() bool {
		resp, err := http.Get(api + "/metrics")
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		m := re.FindAllStringSubmatch(string(b), -1)
		if len(m) < 4 {
			return false
		}
		for _, x := range m {
			if x[2] != "0" {
				return false
			}
		}
		return true
	})
}

func TestPipelineEmbedded(t *testing.T) {
	runPipeline(t, map[string]string{"ESIMFLOW_DATA_DIR": t.TempDir()})
}

// TestPipelineExternal runs the same scenario against this machine's NATS
// (Debian's 2.9.10) and Redis.
func TestPipelineExternal(t *testing.T) {
	srv := natstest.External(t)
	url := redistest.URL(t)
	ns := testns.New(t)
	srv.RemoveNamespace(t, ns)
	redistest.RemovePrefix(t, redistest.Client(t), ns)
	runPipeline(t, map[string]string{"ESIMFLOW_NATS_URL": srv.URL, "ESIMFLOW_REDIS_URL": url, "ESIMFLOW_NAMESPACE": ns})
}

// TestPipelineOnClusters runs the same scenario with the all-in-one joined
// to an external 3-node JetStream cluster (streams and buckets at R3, every
// seed in ESIMFLOW_NATS_URL) and a Redis Cluster (redis+cluster://).
func TestPipelineOnClusters(t *testing.T) {
	n := clustertest.NATSCluster(t)
	r := clustertest.RedisCluster(t)
	runPipeline(t, map[string]string{"ESIMFLOW_NATS_URL": n.URL, "ESIMFLOW_REDIS_URL": r.URL, "ESIMFLOW_STREAM_REPLICAS": "3"})
}

// TestRestartKeepsState stops the all-in-one cleanly and starts it again on the
// same data directory: state and the sent marks survive, nothing is re-sent.
func TestRestartKeepsState(t *testing.T) {
	dir := t.TempDir()
	env := map[string]string{"ESIMFLOW_DATA_DIR": dir}
	first := start(t, env)
	iccid := "8901999900000001"
	postAll(t, first.Hook, []string{
		mustJSON(map[string]any{"eventType": "PROFILE_STATUS", "iccid": iccid, "currentStatus": "ACTIVATED", "timestamp": "2026-11-01T08:00:00Z"}),
	})
	poll.Until(t, "activation sent", func() bool {
		return strings.Contains(first.Messages.String(), "activation:"+iccid)
	})
	first.Stop()

	second := start(t, env)
	var p store.Profile
	if code := getJSON(t, second.API+"/v1/profiles/"+iccid, &p); code != 200 || p.Status != "ACTIVATED" {
		t.Fatalf("after restart: %d %+v", code, p)
	}
	// A late provider retry of the same event is answered 200 and changes nothing.
	postAll(t, second.Hook, []string{
		mustJSON(map[string]any{"eventType": "PROFILE_STATUS", "iccid": iccid, "currentStatus": "ACTIVATED", "timestamp": "2026-11-01T08:00:00Z"}),
	})
	waitForQuiet(t, second.API)
	if strings.Contains(second.Messages.String(), "activation:"+iccid) {
		t.Errorf("activation re-sent after restart:\n%s", second.Messages.String())
	}
}
