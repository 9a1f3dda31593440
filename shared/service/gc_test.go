package service

import (
	"runtime/debug"
	"testing"
)

// TestGCApply: a default applies where its variable is unset, and each
// variable set keeps the runtime's own reading of it.
func TestGCApply(t *testing.T) {
	percent, limit := debug.SetGCPercent(100), debug.SetMemoryLimit(-1)
	t.Cleanup(func() {
		debug.SetGCPercent(percent)
		debug.SetMemoryLimit(limit)
	})
	const own = 1 << 40 // as the runtime read a GOMEMLIMIT of its own
	for _, tc := range []struct {
		name      string
		gc        GC
		env       map[string]string
		wantGOGC  int
		wantLimit int64
	}{
		{"neither set", GC{Percent: 400, MemoryLimit: 64 << 20}, nil, 400, 64 << 20},
		{"GOGC set", GC{Percent: 400, MemoryLimit: 64 << 20}, map[string]string{"GOGC": "100"}, 100, 64 << 20},
		{"GOMEMLIMIT set", GC{Percent: 400, MemoryLimit: 64 << 20}, map[string]string{"GOMEMLIMIT": "off"}, 400, own},
		{"no defaults", GC{}, nil, 100, own},
	} {
		t.Run(tc.name, func(t *testing.T) {
			debug.SetGCPercent(100)
			debug.SetMemoryLimit(own)
			tc.gc.Apply(func(k string) string { return tc.env[k] })
			if got := debug.SetGCPercent(100); got != tc.wantGOGC {
				t.Errorf("GC percent %d, want %d", got, tc.wantGOGC)
			}
			if got := debug.SetMemoryLimit(-1); got != tc.wantLimit {
				t.Errorf("memory limit %d, want %d", got, tc.wantLimit)
			}
		})
	}
}
