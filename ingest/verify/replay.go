package verify

import (
	"hash/maphash"
	"sync"
	"time"
)

// DefaultReplayCapacity is how many delivered Standard Webhooks ids are
// remembered. Only requests that passed the signature check and were stored
// are remembered, so an outsider cannot fill the cache; past the capacity the
// oldest ids are forgotten first, and a replay of one of those falls back to
// the dedupe layers (JetStream's duplicate window, the processor's seen-set).
const DefaultReplayCapacity = 100_000

// replays remembers message ids until a time: a map for the lookup and the
// ids in the order remembered, which is about the order they expire in (each
// lives for the same tolerance after its sender's timestamp).
//
// An id is kept as a 128-bit keyed hash and its time as Unix nanoseconds:
// 54 bytes of heap an id instead of 114 for the id's string and a time.Time
// (BenchmarkReplayCache), 6 MiB less at the default capacity, which a full
// load reaches in seconds (docs/adr/0014). The seeds are random per process and
// the ids are signed, so no sender can aim two ids at one key; by chance two
// of 100 000 ids share one with odds of about 1 in 10^28.
type replays struct {
	mu       sync.Mutex
	seeds    [2]maphash.Seed
	until    map[replayKey]int64
	queue    []replayKey
	capacity int
}

type replayKey [2]uint64

func newReplays(capacity int) *replays {
	return &replays{seeds: [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()},
		until: map[replayKey]int64{}, capacity: max(capacity, 1)}
}

// SetReplayCapacity sets how many delivered ids are remembered (at least 1).
func (s *StandardWebhooks) SetReplayCapacity(n int) { s.replays = newReplays(n) }

func (c *replays) key(id string) replayKey {
	return replayKey{maphash.String(c.seeds[0], id), maphash.String(c.seeds[1], id)}
}

func (c *replays) seen(id string, now time.Time) bool {
	if id == "" {
		return false
	}
	k := c.key(id)
	c.mu.Lock()
	defer c.mu.Unlock()
	u, ok := c.until[k]
	return ok && now.UnixNano() < u
}

func (c *replays) remember(id string, until, now time.Time) {
	if id == "" || !now.Before(until) {
		return
	}
	k, nowNs := c.key(id), now.UnixNano()
	c.mu.Lock()
	defer c.mu.Unlock()
	// Forget from the oldest: what expired, and what no longer fits.
	for len(c.queue) > 0 {
		head := c.queue[0]
		if len(c.until) < c.capacity && nowNs < c.until[head] {
			break
		}
		delete(c.until, head)
		c.queue = c.queue[1:]
	}
	if _, ok := c.until[k]; !ok {
		c.queue = append(c.queue, k)
	}
	c.until[k] = until.UnixNano()
}
