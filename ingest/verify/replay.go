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

// replays remembers message ids until a time: the ids in the order
// remembered, which is about the order they expire in (each lives for the
// same tolerance after its sender's timestamp), in a ring, and an index of
// the ring by id for the lookup.
//
// An id is kept as a 128-bit keyed hash and its time as Unix nanoseconds.
// The seeds are random per process and the ids are signed, so no sender can
// aim two ids at one key; by chance two of 100 000 ids share one with odds
// of about 1 in 10^28.
//
// The ring and its index are arrays that stop growing at the capacity: 24
// bytes an id in the ring and about 10 in the index, 3.4 MiB at the default
// capacity however long a load lasts. A map and a queue sliced from
// its front held 54 bytes an id once full and 90 after a full load had
// cycled through them (tombstones, the queue's dead prefix), which
// GOGC=200 let grow to three times that before collecting
// (BenchmarkReplayCacheSteady, docs/adr/0014).
type replays struct {
	mu    sync.Mutex
	seeds [2]maphash.Seed
	// ring[head], ring[head+1], … (modulo its length) are the n ids
	// remembered, oldest first.
	ring    []replayEntry
	head, n int
	// slots index the ring by key with linear probing: 0 is an empty slot,
	// i+1 is ring[i]. Its length is a power of two at least twice the
	// ring's, so a probe ends after a slot or two.
	slots    []uint32
	capacity int
}

type replayKey [2]uint64

type replayEntry struct {
	key   replayKey
	until int64 // Unix nanoseconds
}

// firstRing is the ring's length before the first id; it doubles up to the
// capacity, so a quiet receiver keeps a small one.
const firstRing = 1024

func newReplays(capacity int) *replays {
	return &replays{seeds: [2]maphash.Seed{maphash.MakeSeed(), maphash.MakeSeed()}, capacity: max(capacity, 1)}
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
	s := c.find(k)
	return s >= 0 && now.UnixNano() < c.ring[c.slots[s]-1].until
}

func (c *replays) remember(id string, until, now time.Time) {
	if id == "" || !now.Before(until) {
		return
	}
	k, nowNs := c.key(id), now.UnixNano()
	c.mu.Lock()
	defer c.mu.Unlock()
	// Forget from the oldest: what expired, and what no longer fits.
	for c.n > 0 && (c.n >= c.capacity || nowNs >= c.ring[c.head].until) {
		c.unindex(c.find(c.ring[c.head].key))
		c.head = (c.head + 1) % len(c.ring)
		c.n--
	}
	if s := c.find(k); s >= 0 {
		c.ring[c.slots[s]-1].until = until.UnixNano()
		return
	}
	if c.n == len(c.ring) {
		c.grow()
	}
	i := (c.head + c.n) % len(c.ring)
	c.ring[i] = replayEntry{key: k, until: until.UnixNano()}
	c.n++
	c.index(i)
}

// grow doubles the ring, up to the capacity, with the ids from its start,
// and indexes it anew.
func (c *replays) grow() {
	ring := make([]replayEntry, min(max(2*len(c.ring), firstRing), c.capacity))
	for j := range c.n {
		ring[j] = c.ring[(c.head+j)%len(c.ring)]
	}
	size := 2
	for size < 2*len(ring) {
		size *= 2
	}
	c.ring, c.head, c.slots = ring, 0, make([]uint32, size)
	for j := range c.n {
		c.index(j)
	}
}

// home is the slot a key's probe starts at: the key is a keyed hash, so its
// low bits are as good as any.
func (c *replays) home(k replayKey) int { return int(k[0] & uint64(len(c.slots)-1)) }

// find returns the slot that indexes k, or -1.
func (c *replays) find(k replayKey) int {
	if len(c.slots) == 0 {
		return -1
	}
	mask := len(c.slots) - 1
	for s := c.home(k); ; s = (s + 1) & mask {
		switch e := c.slots[s]; {
		case e == 0:
			return -1
		case c.ring[e-1].key == k:
			return s
		}
	}
}

// index adds ring[i] to the slots.
func (c *replays) index(i int) {
	mask := len(c.slots) - 1
	s := c.home(c.ring[i].key)
	for c.slots[s] != 0 {
		s = (s + 1) & mask
	}
	c.slots[s] = uint32(i + 1)
}

// unindex empties slot s and moves back the entries after it that could not
// be found across the gap (linear probing's deletion, no tombstones).
func (c *replays) unindex(s int) {
	mask := len(c.slots) - 1
	for {
		c.slots[s] = 0
		next := s
		for {
			next = (next + 1) & mask
			e := c.slots[next]
			if e == 0 {
				return
			}
			// The entry at next stays unless its home is cyclically
			// outside (s, next]: then its probe passes s.
			h := c.home(c.ring[e-1].key)
			if (next > s && (h <= s || h > next)) || (next < s && h <= s && h > next) {
				c.slots[s] = e
				s = next
				break
			}
		}
	}
}
