package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/esimflow/esimflow/cmd/esimflow/allinone/allinonetest"
	"github.com/esimflow/esimflow/cmd/esimflow/simulate"
	"github.com/esimflow/esimflow/shared/lifecycle"
	"github.com/esimflow/esimflow/shared/poll"
	"github.com/esimflow/esimflow/shared/store"
)

// freeAddr is a loopback address nothing listens on, for a server the
// all-in-one is configured to call before it starts.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	return addr
}

// reconcilerEnv configures the all-in-one's reconciler against the
// simulator's query API at addr. The plan's orders are dated from
// lifecycle.Epoch (2026-01-01), hence the long lookback.
func reconcilerEnv(env map[string]string, addr string, stale time.Duration) map[string]string {
	env["ESIMFLOW_RECONCILE_URL"] = "http://" + addr
	env["ESIMFLOW_RECONCILE_ACCESS_CODE"] = "simulator"
	env["ESIMFLOW_RECONCILE_SECRET"] = "simulator-secret"
	env["ESIMFLOW_RECONCILE_STALE"] = stale.String()
	env["ESIMFLOW_RECONCILE_INTERVAL"] = (stale / 4).String()
	env["ESIMFLOW_RECONCILE_LOOKBACK"] = "87600h"
	return env
}

// Issue 17's first proof: with 20 % of the webhooks never sent, the
// reconciler in the all-in-one polls the simulator's query API and every
// eSIM reaches its true final state, every message esimflow could know of
// goes out once, none unasked. What no poller can learn is a message
// about a state the provider replaced before any poll saw it (a dropped
// 80 % report of a bundle topped up since: the query API tells the
// current bundle only); the check counts those apart as unknowable.
func TestSimulateCheckWithDropsReconciles(t *testing.T) {
	addr := freeAddr(t)
	const stale = 2 * time.Second
	env := reconcilerEnv(map[string]string{"ESIMFLOW_DATA_DIR": t.TempDir(), "ESIMFLOW_ADMIN_TOKEN": "s3cret"}, addr, stale)
	sys := allinonetest.Start(t, env)
	cli := map[string]string{"ESIMFLOW_API_URL": sys.API, "ESIMFLOW_ADMIN_TOKEN": "s3cret"}

	out, err := simulateCLI(t, cli, "--check", "--seed", "21", "--esims", "40", "--rate", "60", "--duplicates", "0.1",
		"--reorder", "1s", "--drop", "0.2", "--url", sys.Hook, "--serve", addr, "--check-timeout", "25s")
	if err != nil {
		t.Fatalf("simulate --check: %v\n%s", err, out)
	}
	if strings.Contains(out, " 0 dropped") {
		t.Fatalf("no webhook dropped:\n%s", out)
	}
	if !strings.Contains(out, "check: esimflow holds the truth") {
		t.Fatalf("no verdict:\n%s", out)
	}
	t.Logf("%s", out)
}

// A provider without webhooks (Celitech, keepgo) is driven by polling
// alone: every webhook dropped, the sweep finds each order by its time and
// brings it to its final state, and the messages its states ask for go out.
func TestPollOnlyProvider(t *testing.T) {
	addr := freeAddr(t)
	env := reconcilerEnv(map[string]string{"ESIMFLOW_DATA_DIR": t.TempDir(), "ESIMFLOW_ADMIN_TOKEN": "s3cret"}, addr, 2*time.Second)
	sys := allinonetest.Start(t, env)
	cli := map[string]string{"ESIMFLOW_API_URL": sys.API, "ESIMFLOW_ADMIN_TOKEN": "s3cret"}

	out, err := simulateCLI(t, cli, "--check", "--seed", "22", "--esims", "20", "--rate", "60", "--drop", "1",
		"--url", sys.Hook, "--serve", addr, "--check-timeout", "25s")
	if err != nil {
		t.Fatalf("simulate --check: %v\n%s", err, out)
	}
	if !strings.Contains(out, "sent 0 webhooks") || !strings.Contains(out, "check: esimflow holds the truth") {
		t.Fatalf("want no webhook sent and the truth held:\n%s", out)
	}
	if strings.Contains(out, " 0 messages sent") {
		t.Fatalf("no message went out:\n%s", out)
	}
	t.Logf("%s", out)
}

// getProfile reads a profile from the internal API; found false on 404.
func getProfile(t *testing.T, api, iccid string) (store.Profile, bool) {
	t.Helper()
	resp, err := http.Get(api + "/v1/profiles/" + iccid)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var p store.Profile
	if resp.StatusCode != http.StatusOK {
		return p, false
	}
	if err := json.NewDecoder(resp.Body).Decode(&p); err != nil {
		t.Fatal(err)
	}
	return p, true
}

// An eSIM Access ORDER_STATUS GOT_RESOURCE names no profile: the
// reconciler queries the order at once (no stale wait) and the profile
// appears in the state with its LPA activation code, QR code and install
// link; then an eSIM whose activation webhook never came is activated by
// polling once silent for the stale threshold, and the delay is measured.
func TestReconcilerCompletesAnOrderWithoutProfiles(t *testing.T) {
	var plan []*lifecycle.ESIM
	for seed := uint64(1); len(plan) == 0 || len(plan[0].Events) < 3; seed++ { // a lifecycle with an activation
		var err error
		if plan, err = lifecycle.Plan(rand.New(rand.NewPCG(seed, 1)), lifecycle.Options{ESIMs: 1, Span: time.Second, Prefix: "REC-", ICCIDPrefix: "8999333"}); err != nil {
			t.Fatal(err)
		}
	}
	prov, err := simulate.NewProvider(plan, simulate.ProviderOptions{AccessCode: "simulator", SecretKey: "simulator-secret", RateLimit: 8})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(prov.Handler())
	defer srv.Close()
	const stale = 2 * time.Second
	env := reconcilerEnv(map[string]string{"ESIMFLOW_DATA_DIR": t.TempDir()}, strings.TrimPrefix(srv.URL, "http://"), stale)
	sys := allinonetest.Start(t, env)
	e := plan[0]

	prov.Played(0, 0) // the order happened; its webhook as eSIM Access sends it: no profiles
	body := fmt.Sprintf(`{"notifyType":"ORDER_STATUS","eventGenerateTime":"2026-01-01T00:00:05Z","content":{"orderNo":%q,"transactionId":%q,"orderStatus":"GOT_RESOURCE"}}`,
		e.OrderNo, e.TransactionID)
	sent := time.Now()
	resp, err := http.Post(sys.Hook, "application/json", strings.NewReader(body))
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("webhook: %v %v", resp, err)
	}
	_ = resp.Body.Close()
	var p store.Profile
	poll.Until(t, "the polled profile with its install data", func() bool {
		var found bool
		p, found = getProfile(t, sys.API, e.ICCID)
		return found && p.Install != nil && p.Status != "" // the order's and the status's events may merge apart
	})
	t.Logf("install data %v after the webhook (stale threshold %v)", time.Since(sent).Round(10*time.Millisecond), stale)
	if !strings.HasPrefix(p.Install.ActivationCode, "LPA:1$") || !strings.Contains(p.Install.QRCodeURL, e.ICCID) || !strings.Contains(p.Install.InstallURL, e.ICCID) ||
		p.OrderNo != e.OrderNo || p.Status != "GOT_RESOURCE" {
		t.Errorf("profile %+v, install %+v: want the order's, with an LPA code, QR and install links", p, p.Install)
	}
	prov.Played(0, 1) // the next step happens; its webhook is dropped
	happened := time.Now()
	poll.Until(t, "the dropped step learnt by polling", func() bool {
		q, _ := getProfile(t, sys.API, e.ICCID)
		return q.Status != "" && q.Status != "GOT_RESOURCE" || q.UsedVolume > 0
	})
	t.Logf("dropped step in the state %v after it happened (stale threshold %v, sweep every %v)", time.Since(happened).Round(10*time.Millisecond), stale, stale/4)

	// The activation message, sent on the polled activation, carries the
	// polled LPA code.
	if q, _ := getProfile(t, sys.API, e.ICCID); slices.Contains([]string{"ACTIVATED", "IN_USE"}, q.Status) {
		poll.Until(t, "the activation message with the LPA code", func() bool {
			return strings.Contains(sys.Messages.String(), p.Install.ActivationCode)
		})
		t.Logf("activation message with %s sent", p.Install.ActivationCode)
	}

	// The operator sees the polls and what they learnt, per provider.
	var out bytes.Buffer
	if err := cli(t.Context(), &out, map[string]string{"ESIMFLOW_API_URL": sys.API}, "status"); err != nil {
		t.Fatalf("status: %v\n%s", err, out.String())
	}
	for _, want := range []string{"provider polls", "esimaccess:ok=", "learnt by polling", "esimaccess:ORDER_STATUS="} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("status lacks %q:\n%s", want, out.String())
		}
	}
}
