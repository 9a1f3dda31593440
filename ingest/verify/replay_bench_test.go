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

// BenchmarkReplayCacheSteady remembers ids into a full cache, as a load that
// lasts does: each remembers one and forgets the oldest. Its heap-B/id is
// what the cache holds after twice its capacity has gone through it.
func BenchmarkReplayCacheSteady(b *testing.B) {
	now := time.Now()
	until := now.Add(5 * time.Minute)
	c := newReplays(DefaultReplayCapacity)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	for i := range 2 * DefaultReplayCapacity {
		c.remember("msg_2KWPBgLlAfxdpx2AI5"+strconv.Itoa(i), until, now)
	}
	runtime.GC()
	runtime.ReadMemStats(&after)
	kept := after.HeapAlloc - before.HeapAlloc
	id := make([]string, 4096)
	for i := range id {
		id[i] = "msg_3KWPBgLlAfxdpx2AI5" + strconv.Itoa(i)
	}
	b.ResetTimer()
	i := 0
	for b.Loop() {
		c.remember(id[i%len(id)], until, now)
		i++
	}
	b.StopTimer()
	runtime.KeepAlive(c)
	b.ReportMetric(float64(kept)/DefaultReplayCapacity, "heap-B/id")
}
