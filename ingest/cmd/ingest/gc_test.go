package main

import (
	"runtime/debug"
	"testing"
)

// TestTuneGC: ingest's defaults apply where GOGC and GOMEMLIMIT are unset,
// and each variable set keeps the runtime's own reading of it.
func TestTuneGC(t *testing.T) {
	percent, limit := debug.SetGCPercent(100), debug.SetMemoryLimit(-1)
	t.Cleanup(func() {
		debug.SetGCPercent(percent)
		debug.SetMemoryLimit(limit)
	})
	for _, tc := range []struct {
		name      string
		env       map[string]string
		wantGOGC  int
		wantLimit int64
	}{
		{"neither set", nil, gcPercent, memoryLimit},
		{"GOGC set", map[string]string{"GOGC": "100"}, 100, memoryLimit},
		{"GOMEMLIMIT set", map[string]string{"GOMEMLIMIT": "off"}, gcPercent, 1 << 40},
	} {
		t.Run(tc.name, func(t *testing.T) {
			debug.SetGCPercent(100)       // as the runtime read a GOGC of 100
			debug.SetMemoryLimit(1 << 40) // as it read a GOMEMLIMIT of its own
			tuneGC(func(k string) string { return tc.env[k] })
			if got := debug.SetGCPercent(100); got != tc.wantGOGC {
				t.Errorf("GC percent %d, want %d", got, tc.wantGOGC)
			}
			if got := debug.SetMemoryLimit(-1); got != tc.wantLimit {
				t.Errorf("memory limit %d, want %d", got, tc.wantLimit)
			}
		})
	}
}
