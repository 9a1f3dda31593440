package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/esimflow/esimflow/cmd/esimflow/allinone/allinonetest"
)

// simulateCLI runs `esimflow simulate args…` with env as its environment.
func simulateCLI(t *testing.T, env map[string]string, args ...string) (string, error) {
	t.Helper()
	cmd := newSimulateCmd(func(k string) string { return env[k] })
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	var out, errOut bytes.Buffer
	cmd.SetArgs(args)
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	err := cmd.ExecuteContext(context.Background())
	if testing.Verbose() {
		t.Logf("simulate %s:\n%s%s", strings.Join(args, " "), out.String(), errOut.String())
	}
	return out.String(), err
}

// The README's quick start as a test: the all-in-one, then a short seeded
// simulation with duplicates and reordering, signed as ingest checks and
// with the internal API behind a token; --check finds esimflow holding the
// truth, and the messages were printed. With webhooks dropped (no
// reconciler yet), --check exits non-zero and lists what differs.
func TestSimulateCheck(t *testing.T) {
	env := map[string]string{
		"ESIMFLOW_DATA_DIR": t.TempDir(), "ESIMFLOW_ADMIN_TOKEN": "s3cret",
		"ESIMFLOW_INGEST_SIGNATURE_HEADER": "X-Signature", "ESIMFLOW_INGEST_SIGNATURE_SECRETS": "sim-key",
	}
	sys := allinonetest.Start(t, env)
	cli := map[string]string{"ESIMFLOW_API_URL": sys.API, "ESIMFLOW_ADMIN_TOKEN": "s3cret",
		"ESIMFLOW_INGEST_SIGNATURE_HEADER": "X-Signature", "ESIMFLOW_INGEST_SIGNATURE_SECRETS": "sim-key"}

	out, err := simulateCLI(t, cli, "--check", "--seed", "7", "--esims", "15", "--rate", "60", "--duplicates", "0.15",
		"--reorder", "1.5s", "--url", sys.Hook, "--check-timeout", "90s")
	if err != nil {
		t.Fatalf("simulate --check: %v\n%s", err, out)
	}
	for _, want := range []string{"registered 15 contacts", "0 dropped", "0 given up", "check: esimflow holds the truth"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "×401") {
		t.Errorf("a webhook was refused (signature):\n%s", out)
	}
	if !strings.Contains(sys.Messages.String(), "sim7_txn_") && !strings.Contains(sys.Messages.String(), "8999000007") {
		t.Errorf("no customer message printed:\n%s", sys.Messages.String())
	}

	out, err = simulateCLI(t, cli, "--check", "--seed", "8", "--esims", "10", "--rate", "100", "--drop", "0.3",
		"--url", sys.Hook, "--check-timeout", "2s")
	if err == nil || !strings.Contains(err.Error(), "differs from the truth") {
		t.Fatalf("simulate --check with 30 %% dropped: %v, want differences\n%s", err, out)
	}
	if !strings.Contains(out, "wanted") && !strings.Contains(out, "missing message") {
		t.Errorf("the differences are not listed:\n%s", out)
	}
}

// --expect prints the truth and sends nothing: the same seed, the same JSON.
func TestSimulateExpectIsReproducible(t *testing.T) {
	a, err := simulateCLI(t, nil, "--expect", "--seed", "5", "--esims", "30")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := simulateCLI(t, nil, "--expect", "--seed", "5", "--esims", "30")
	c, _ := simulateCLI(t, nil, "--expect", "--seed", "6", "--esims", "30")
	if a != b {
		t.Error("seed 5 expected two different outcomes")
	}
	if a == c {
		t.Error("seeds 5 and 6 expected the same outcome")
	}
	for _, want := range []string{`"orders"`, `"profiles"`, `"messages"`, `"activation:8999000005`, `"status": "ACTIVATED"`} {
		if !strings.Contains(a, want) {
			t.Errorf("--expect lacks %s:\n%.2000s", want, a)
		}
	}
}

func TestSimulateRefusesBadKnobs(t *testing.T) {
	for _, args := range [][]string{
		{"--expect", "--esims", "0"},
		{"--expect", "--drop", "1.5"},
		{"--expect", "--rate", "0"},
		{"--expect", "--url", "ftp://x"},
	} {
		if _, err := simulateCLI(t, nil, args...); err == nil {
			t.Errorf("simulate %v: no error", args)
		}
	}
}
