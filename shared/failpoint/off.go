//go:build !failpoints

package failpoint

// Inject is a failpoint named name; without the failpoints tag it does nothing.
func Inject(string) {}

// Enabled reports whether the planted bug name is switched on; without the
// failpoints tag, never.
func Enabled(string) bool { return false }

// Retain keeps n bytes alive for the rest of the process (a planted leak);
// without the failpoints tag it does nothing.
func Retain(int) {}
