//go:build failpoints

package failpoint

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestInjectKillsWithMarker arms a point with probability 1 in a child
// process: it must die by SIGKILL after writing the marker.
func TestInjectKillsWithMarker(t *testing.T) {
	if os.Getenv("FAILPOINT_CHILD") == "1" {
		if !Enabled("bug-x") || Enabled("bug-y") {
			os.Exit(4)
		}
		Inject("never-armed")
		Inject("p")
		os.Exit(0)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestInjectKillsWithMarker$")
	cmd.Env = append(os.Environ(), "FAILPOINT_CHILD=1", EnvVar+"=p=1,bug-x")
	out, err := cmd.CombinedOutput()
	ee, ok := err.(*exec.ExitError)
	if !ok || ee.ExitCode() != -1 || !strings.Contains(ee.String(), "killed") {
		t.Fatalf("child ended with %v, want killed; output:\n%s", err, out)
	}
	if !strings.Contains(string(out), Marker+" p") {
		t.Errorf("no marker in the child's output:\n%s", out)
	}
}
