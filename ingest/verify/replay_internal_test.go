package verify

import (
	"math/rand/v2"
	"strconv"
	"testing"
	"time"
)

// TestReplaysAgainstModel runs random deliveries and lookups against the
// cache and against a plain map with a queue (the cache's contract written
// the simple way): every lookup must agree, through the ring's growth, its
// wrapping, and the index's deletions.
func TestReplaysAgainstModel(t *testing.T) {
	for _, tc := range []struct {
		name     string
		capacity int
		ids      int // distinct ids drawn from, so some repeat
	}{
		{"capacity 1", 1, 4},
		{"small, many repeats", 7, 20},
		{"below the first ring", 50, 200},
		{"grows past the first ring", 3000, 9000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(1, uint64(tc.capacity)))
			c := newReplays(tc.capacity)
			m := newModel(tc.capacity)
			now := time.Unix(1_700_000_000, 0)
			for op := range 40 * tc.capacity {
				now = now.Add(time.Duration(rng.IntN(50)) * time.Millisecond)
				id := "msg_" + strconv.Itoa(rng.IntN(tc.ids))
				if rng.IntN(3) > 0 {
					until := now.Add(time.Duration(rng.IntN(4000)-500) * time.Millisecond)
					c.remember(id, until, now)
					m.remember(id, until, now)
					continue
				}
				if got, want := c.seen(id, now), m.seen(id, now); got != want {
					t.Fatalf("op %d: seen(%s) = %v, the model says %v", op, id, got, want)
				}
			}
			if c.n > tc.capacity || len(c.ring) > tc.capacity {
				t.Errorf("holds %d ids in a ring of %d: capacity %d", c.n, len(c.ring), tc.capacity)
			}
		})
	}
}

type model struct {
	until    map[string]int64
	queue    []string
	capacity int
}

func newModel(capacity int) *model { return &model{until: map[string]int64{}, capacity: capacity} }

func (m *model) seen(id string, now time.Time) bool {
	u, ok := m.until[id]
	return ok && now.UnixNano() < u
}

func (m *model) remember(id string, until, now time.Time) {
	if !now.Before(until) {
		return
	}
	for len(m.queue) > 0 && (len(m.until) >= m.capacity || now.UnixNano() >= m.until[m.queue[0]]) {
		delete(m.until, m.queue[0])
		m.queue = m.queue[1:]
	}
	if _, ok := m.until[id]; !ok {
		m.queue = append(m.queue, id)
	}
	m.until[id] = until.UnixNano()
}
