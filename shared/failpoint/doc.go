// Package failpoint lets the chaos suite kill a service at a chosen point of
// its work, and plant known bugs to show that the suite's checks catch them.
//
// It does something only in binaries built with -tags failpoints; in every
// other build Inject and Enabled are empty functions the compiler inlines
// away, so production binaries carry neither the crash points nor the bugs.
//
// With the tag, ESIMFLOW_FAILPOINTS lists what is armed, comma-separated:
//
//	after-store-write=0.01   SIGKILL this process at 1 % of the hits of the point
//	after-send=0.05:exit     exit(3) instead, without the marker: a planted crash
//	bug-ack-first            a bare name switches a planted bug on (Enabled)
//
// Before killing itself the process writes Marker and the point's name on
// standard error, so a supervisor can tell an injected fault from a crash.
package failpoint

// Marker starts the line a process writes on standard error just before a
// failpoint kills it.
const Marker = "esimflow-failpoint-hit:"

// EnvVar names the variable that arms failpoints.
const EnvVar = "ESIMFLOW_FAILPOINTS"
