package verify

import (
	"runtime"
	"strconv"
	"testing"
	"time"
)

// BenchmarkReplayCache fills a cache of the default capacity as a full load
// does, each id a string of its own as a request header brings it, and
// reports the heap the cache keeps per id.
func BenchmarkReplayCache(b *testing.B) {
	now := time.Now()
	until := now.Add(5 * time.Minute)
	var kept uint64
	for b.Loop() {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		c := newReplays(DefaultReplayCapacity)
		for i := range DefaultReplayCapacity {
			c.remember("msg_2KWPBgLlAfxdpx2AI5"+strconv.Itoa(i), until, now)
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		kept = after.HeapAlloc - before.HeapAlloc
		runtime.KeepAlive(c)
	}
	b.ReportMetric(float64(kept)/DefaultReplayCapacity, "heap-B/id")
}
