package verify

import (
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
type replays struct {
	mu       sync.Mutex
	until    map[string]time.Time
	queue    []string
	capacity int
}

func newReplays(capacity int) *replays {
	return &replays{until: map[string]time.Time{}, capacity: max(capacity, 1)}
}

// SetReplayCapacity sets how many delivered ids are remembered (at least 1).
func (s *StandardWebhooks) SetReplayCapacity(n int) { s.replays = newReplays(n) }

func (c *replays) seen(id string, now time.Time) bool {
	if id == "" {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	u, ok := c.until[id]
	return ok && now.Before(u)
}

func (c *replays) remember(id string, until, now time.Time) {
	if id == "" || !now.Before(until) {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	// Forget from the oldest: what expired, and what no longer fits.
	for len(c.queue) > 0 {
		head := c.queue[0]
		if len(c.until) < c.capacity && now.Before(c.until[head]) {
			break
		}
		delete(c.until, head)
		c.queue[0] = ""
		c.queue = c.queue[1:]
	}
	if _, ok := c.until[id]; !ok {
		c.queue = append(c.queue, id)
	}
	c.until[id] = until
}
