package chaos_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/esimflow/esimflow/chaos"
	"github.com/esimflow/esimflow/shared/failpoint"
)

// TestProductionBinariesCarryNoFailpoints builds the services as make build
// does, without the failpoints tag, and looks for the failpoints' names: the
// crash points and planted bugs must exist only in the chaos suite's builds.
func TestProductionBinariesCarryNoFailpoints(t *testing.T) {
	if testing.Short() {
		t.Skip("builds three binaries")
	}
	cwd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	root, err := chaos.WorkspaceRoot(cwd)
	if err != nil {
		t.Fatal(err)
	}
	for _, svc := range []string{"ingest", "processor", "notifier"} {
		bin := filepath.Join(t.TempDir(), svc)
		cmd := exec.Command("go", "build", "-o", bin, "./"+svc+"/cmd/"+svc)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("build %s: %v\n%s", svc, err, out)
		}
		b, err := os.ReadFile(bin)
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range []string{failpoint.EnvVar, failpoint.Marker, "bug-ack-first", "bug-skip-claim", "bug-ok-before-puback", "after-seen-mark", "after-send"} {
			if bytes.Contains(b, []byte(s)) {
				t.Errorf("%s built without the failpoints tag contains %q", svc, s)
			}
		}
	}
}
