package main

import (
	"net"
	"strings"
	"testing"
	"time"

	"github.com/esimflow/esimflow/cmd/esimflow/allinone/allinonetest"
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
// eSIM reaches its true final state, no message goes out twice or
// unasked. What polling cannot learn is a message about a bundle the
// provider has replaced since: the query API tells the current bundle
// only, so a dropped 80 % report of a bundle topped up before the poll is
// gone (docs/adr/0010); those, and only those, may be missing.
func TestSimulateCheckWithDropsReconciles(t *testing.T) {
	addr := freeAddr(t)
	const stale = 2 * time.Second
	env := reconcilerEnv(map[string]string{"ESIMFLOW_DATA_DIR": t.TempDir(), "ESIMFLOW_ADMIN_TOKEN": "s3cret"}, addr, stale)
	sys := allinonetest.Start(t, env)
	cli := map[string]string{"ESIMFLOW_API_URL": sys.API, "ESIMFLOW_ADMIN_TOKEN": "s3cret"}

	out, _ := simulateCLI(t, cli, "--check", "--seed", "21", "--esims", "40", "--rate", "60", "--duplicates", "0.1",
		"--reorder", "1s", "--drop", "0.2", "--url", sys.Hook, "--serve", addr, "--check-timeout", "25s")
	if strings.Contains(out, " 0 dropped") {
		t.Fatalf("no webhook dropped:\n%s", out)
	}
	missing := 0
	for _, line := range strings.Split(out, "\n") {
		switch {
		case strings.HasPrefix(line, "missing message low_data:"):
			missing++
		case strings.HasPrefix(line, "missing message"), strings.HasPrefix(line, "duplicate message"),
			strings.HasPrefix(line, "unexpected message"), strings.HasPrefix(line, "profile "), strings.HasPrefix(line, "order "):
			t.Errorf("differs from the truth: %s", line)
		}
	}
	t.Logf("%d low-data messages of replaced bundles unknowable by polling\n%s", missing, out)
}
