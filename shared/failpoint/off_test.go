//go:build !failpoints

package failpoint

import "testing"

// TestProductionBuildIsInert: without the failpoints tag, arming every
// planted bug and a certain crash point does nothing — production builds
// carry neither, whatever their environment says.
func TestProductionBuildIsInert(t *testing.T) {
	t.Setenv(EnvVar, "bug-ack-first,bug-seen-first,bug-skip-claim,bug-ok-before-puback,after-seen-mark=1")
	for _, bug := range []string{"bug-ack-first", "bug-seen-first", "bug-skip-claim", "bug-ok-before-puback"} {
		if Enabled(bug) {
			t.Errorf("%s enabled in a build without the failpoints tag", bug)
		}
	}
	Inject("after-seen-mark") // would kill the test binary if armed
}
