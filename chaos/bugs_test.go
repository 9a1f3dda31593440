package chaos_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/esimflow/esimflow/chaos"
)

// TestPlantedBugs shows that each check catches the bug it exists for: a
// short run with one bug planted through the failpoints build tag, which
// must end with a violation of that check. make chaos-bugs runs them
// (ESIMFLOW_CHAOS_BUGS=1); they take several minutes in all.
func TestPlantedBugs(t *testing.T) {
	if os.Getenv("ESIMFLOW_CHAOS_BUGS") == "" {
		t.Skip("set ESIMFLOW_CHAOS_BUGS=1 (make chaos-bugs) to run the planted-bug demonstrations")
	}
	seed := seed(t)
	t.Logf("chaos: seed %d, NATS system (ESIMFLOW_CHAOS_SEED chooses another)", seed)
	bins := binariesFor(t, "system")
	for _, tc := range []struct {
		name       string
		failpoints map[string]string
		maxRSSMB   int64
		want       []string // any of these checks
	}{
		// Invariant 4: ack last. Acking first and dying after the first
		// merge of a batch loses the rest of the batch.
		{"processor acks before the store write", map[string]string{"processor": "bug-ack-first,after-store-write=0.02"}, 0,
			[]string{chaos.CheckState, chaos.CheckMissing}},
		// Invariant 4: dedupe is a fast path. Marking seen before the merge
		// makes the redelivery skip an event that never took effect.
		{"processor marks seen before the merge", map[string]string{"processor": "bug-seen-first,after-store-write=0.02"}, 0,
			[]string{chaos.CheckState, chaos.CheckMissing}},
		// Invariant 5: marked sent before sending, then dying: never sent.
		{"notifier marks sent before sending", map[string]string{"notifier": "bug-mark-first,after-mark=0.05"}, 0,
			[]string{chaos.CheckMissing}},
		// Invariant 5: without the channel claim, a redelivered intent is
		// sent again, and nothing in the log explains the copy.
		{"notifier skips the claim", map[string]string{"notifier": "bug-skip-claim,after-send=0.05"}, 0,
			[]string{chaos.CheckDuplicate}},
		// Invariant 1: a 200 means stored.
		{"ingest answers 200 before the PubAck", map[string]string{"ingest": "bug-ok-before-puback,after-ok=0.02"}, 0,
			[]string{chaos.CheckLost}},
		// Invariant 6, and the dead letters hold only what is bad.
		{"processor dead-letters valid events", map[string]string{"processor": "bug-dead-letter-usage"}, 0,
			[]string{chaos.CheckDLQ}},
		{"processor exits on its own", map[string]string{"processor": "after-seen-mark=0.01:exit"}, 0,
			[]string{chaos.CheckCrash}},
		{"processor leaks memory", map[string]string{"processor": "bug-leak"}, 80,
			[]string{chaos.CheckMemory}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := chaos.Config{Duration: 15 * time.Second, Seed: seed, Server: "system", Bins: bins,
				Dir: filepath.Join(t.TempDir(), "run"), Failpoints: tc.failpoints, MaxRSSMB: tc.maxRSSMB, SettleLimit: 2 * time.Minute}
			rep, err := chaos.Run(t.Context(), cfg)
			if err != nil {
				keepLogs(t, cfg.Dir)
				t.Fatalf("seed %d: %v", cfg.Seed, err)
			}
			var out strings.Builder
			rep.Print(&out)
			t.Log("\n" + out.String())
			for _, c := range tc.want {
				if rep.Has(c) {
					return
				}
			}
			t.Errorf("planted bug not caught: want a violation of %q (seed %d)", tc.want, cfg.Seed)
		})
	}
}
