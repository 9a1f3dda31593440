package stream

import (
	"context"
	"sync"
)

// Group coalesces the items goroutines commit at the same time into group
// commits — the mechanism of the KV store's committer and BatchPublisher
// (docs/adr/0017). A caller that finds no commit under way leads: it commits
// what is queued, its own item included, and hands the lead to the first
// caller queued behind it meanwhile; the others wait for their result. A
// lone caller therefore commits at once, alone (Alone), and concurrent
// callers share one atomic commit (Batch). When a batch fails, each of its
// callers commits alone under its own context, so each gets the answer it
// would have had alone.
type Group[T, R any] struct {
	// Max bounds a batch; Key names an item, and a batch ends before a
	// name that repeats (the server refuses a batch holding one twice).
	Max int
	Key func(T) string
	// Alone commits one item; Batch commits items all or nothing, their
	// results in order.
	Alone func(context.Context, T) (R, error)
	Batch func(context.Context, []T) ([]R, error)

	mu    sync.Mutex
	queue []*member[T, R]
	busy  bool // a caller leads
}

// member is a queued item and, once wake is signalled, its result or the
// lead.
type member[T, R any] struct {
	item     T
	res      R
	err      error
	batched  bool // res and err are set (else: commit alone)
	finished bool // the leader is done with it
	lead     bool // its caller leads now
	wake     chan struct{}
}

// Commit commits item, alone or with others, and returns its result.
func (g *Group[T, R]) Commit(ctx context.Context, item T) (R, error) {
	m := &member[T, R]{item: item, wake: make(chan struct{}, 1)}
	g.mu.Lock()
	g.queue = append(g.queue, m)
	if g.busy {
		g.mu.Unlock()
		<-m.wake
		if !m.lead {
			return g.result(ctx, m)
		}
		g.mu.Lock()
	}
	g.busy = true
	for !m.finished {
		batch := g.take()
		g.mu.Unlock()
		g.commit(ctx, m, batch)
		g.mu.Lock()
	}
	if len(g.queue) > 0 {
		next := g.queue[0]
		next.lead = true
		next.wake <- struct{}{}
	} else {
		g.busy = false
	}
	g.mu.Unlock()
	return g.result(ctx, m)
}

// take removes the next batch from the queue: at most Max items, up to the
// first key that repeats. g.mu is held.
func (g *Group[T, R]) take() []*member[T, R] {
	keys := make(map[string]bool, len(g.queue))
	n := 0
	for n < len(g.queue) && n < g.Max && !keys[g.Key(g.queue[n].item)] {
		keys[g.Key(g.queue[n].item)] = true
		n++
	}
	batch := make([]*member[T, R], n)
	copy(batch, g.queue)
	g.queue = g.queue[n:]
	return batch
}

// commit commits batch and wakes each of its callers. The leader (self)
// commits a batch of one only if it is its own: another's is left to its
// caller, under that caller's context.
func (g *Group[T, R]) commit(ctx context.Context, self *member[T, R], batch []*member[T, R]) {
	if len(batch) == 1 {
		m := batch[0]
		if m == self {
			m.res, m.err = g.Alone(ctx, m.item)
			m.batched = true
		}
		m.finished = true
		signal(m.wake)
		return
	}
	items := make([]T, len(batch))
	for i, m := range batch {
		items[i] = m.item
	}
	res, err := g.Batch(ctx, items)
	for i, m := range batch {
		if err == nil {
			m.res, m.batched = res[i], true
		}
		m.finished = true
		signal(m.wake)
	}
}

// result is m's outcome: an item of a batch that failed is committed alone.
func (g *Group[T, R]) result(ctx context.Context, m *member[T, R]) (R, error) {
	if !m.batched {
		return g.Alone(ctx, m.item)
	}
	return m.res, m.err
}

// signal wakes a caller that may already have been woken (to lead).
func signal(wake chan struct{}) {
	select {
	case wake <- struct{}{}:
	default:
	}
}
