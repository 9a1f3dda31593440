package simulate

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/esimflow/esimflow/shared/lifecycle"
)

// delivery is one webhook of the plan and what the sender does with it.
type delivery struct {
	esim  int // index in the plan
	event int // index in its lifecycle
	body  []byte
	at    time.Duration // when to send, from the start, paced
	// drop: never sent; twice: sent again after its 200, as a provider
	// whose first answer timed out on its side does; silent: an event the
	// provider has no webhook for (Airalo's orders and statuses).
	drop, twice, silent bool
	// delivered: the target answered it 2xx.
	delivered atomic.Bool
}

// Stats count what a run did; the embedded lifecycle.Stats its attempts
// and answers.
type Stats struct {
	lifecycle.Stats
	Webhooks, Sent, Dropped, Duplicates, Failed atomic.Int64
}

// maxRetryAfter bounds how long a Retry-After makes the sender wait: the
// real provider waits longer, a simulation should not stall.
const maxRetryAfter = 5 * time.Second

// play sends every delivery at its time through snd from workers
// goroutines and calls happened for each, sent or dropped, when a worker
// takes it (the provider's query API then knows of it). It returns the
// errors of the deliveries given up on.
func play(ctx context.Context, snd *lifecycle.Sender, stats *Stats, seed uint64, ds []*delivery, workers int, happened func(*delivery)) []error {
	var mu sync.Mutex
	var errs []error
	var seq atomic.Int64
	lifecycle.Play(ctx, seed, ds, func(d *delivery) time.Duration { return d.at }, workers, func(ctx context.Context, rng *rand.Rand, d *delivery) {
		happened(d)
		if d.silent {
			return
		}
		stats.Webhooks.Add(1)
		if d.drop {
			stats.Dropped.Add(1)
			return
		}
		id := fmt.Sprintf("sim_%d", seq.Add(1))
		err := snd.Deliver(ctx, rng, id, d.body)
		d.delivered.Store(err == nil)
		if err == nil && d.twice {
			stats.Duplicates.Add(1)
			err = snd.Deliver(ctx, rng, id, d.body)
		}
		if err != nil {
			stats.Failed.Add(1)
			mu.Lock()
			errs = append(errs, fmt.Errorf("%w: %.120s", err, d.body))
			mu.Unlock()
			return
		}
		stats.Sent.Add(1)
	})
	if ctx.Err() != nil {
		errs = append(errs, fmt.Errorf("stopped: %w", ctx.Err()))
	}
	return errs
}
