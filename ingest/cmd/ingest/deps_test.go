package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestLinksNoStore: ingest keeps no state, so its binary must not link a store
// client or the embedded server; package service opens NATS and the streams
// only, and the processes that keep state open their store themselves.
func TestLinksNoStore(t *testing.T) {
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("the go tool is not on PATH: cannot list the binary's dependencies")
	}
	out, err := exec.Command(gobin, "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	for _, unwanted := range []string{
		"github.com/redis/go-redis/",
		"github.com/esimflow/esimflow/shared/store/kvstore",
		"github.com/esimflow/esimflow/shared/store/redisstore",
		"github.com/esimflow/esimflow/shared/storeopen",
		"github.com/nats-io/nats-server/",
	} {
		for _, d := range deps {
			if strings.HasPrefix(d, unwanted) {
				t.Errorf("ingest links %s", d)
			}
		}
	}
	if len(deps) < 10 {
		t.Fatalf("go list -deps listed %d packages: %q", len(deps), deps)
	}
}
