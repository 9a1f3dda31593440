package service

import "runtime/debug"

// GC is a binary's garbage-collector defaults, for the environment variables
// it does not set: the runtime has read GOGC and GOMEMLIMIT before main runs,
// so a default applies only where its variable is unset, and an operator's
// own setting (GOMEMLIMIT=off included) always wins.
type GC struct {
	// Percent is the default GOGC; 0 keeps the runtime's (100).
	Percent int
	// MemoryLimit is the default soft memory limit in bytes; 0 sets none.
	MemoryLimit int64
}

// Apply sets the defaults whose variable getenv does not report.
func (g GC) Apply(getenv func(string) string) {
	if g.Percent > 0 && getenv("GOGC") == "" {
		debug.SetGCPercent(g.Percent)
	}
	if g.MemoryLimit > 0 && getenv("GOMEMLIMIT") == "" {
		debug.SetMemoryLimit(g.MemoryLimit)
	}
}
