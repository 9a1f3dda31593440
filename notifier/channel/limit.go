package channel

import (
	"context"
	"fmt"
	"math"
	"time"

	"golang.org/x/time/rate"
)

// Sender is a channel as the rate limit sees it.
type Sender interface {
	Name() string
	Send(ctx context.Context, m Message) error
}

// Limited sends through s at most perSecond messages a second, with a burst of
// one second's worth. The limit is per process: n notifier instances send up
// to n times as many.
type Limited struct {
	s   Sender
	lim *rate.Limiter
}

// Limit wraps s in a rate limit; perSecond 0 (or less) returns s unchanged.
func Limit(s Sender, perSecond float64) Sender {
	if perSecond <= 0 {
		return s
	}
	return &Limited{s: s, lim: rate.NewLimiter(rate.Limit(perSecond), max(1, int(math.Ceil(perSecond))))}
}

// Name is the wrapped channel's.
func (l *Limited) Name() string { return l.s.Name() }

// Send waits for the limit, then sends. A wait longer than ctx allows is not
// taken: the message is retried later, as a transient failure.
func (l *Limited) Send(ctx context.Context, m Message) error {
	r := l.lim.Reserve()
	wait := r.Delay()
	if deadline, ok := ctx.Deadline(); ok && time.Until(deadline) < wait {
		r.Cancel()
		return &SendError{RetryAfter: wait, Err: fmt.Errorf("%s: rate limit: next send in %v", l.s.Name(), wait.Round(time.Millisecond))}
	}
	if wait > 0 {
		t := time.NewTimer(wait)
		defer t.Stop()
		select {
		case <-ctx.Done():
			r.Cancel()
			return fmt.Errorf("%s: rate limit: %w", l.s.Name(), ctx.Err())
		case <-t.C:
		}
	}
	return l.s.Send(ctx, m)
}

// Unwrap returns the limited channel, for what it offers besides Send (a
// start-up Check, Close).
func (l *Limited) Unwrap() Sender { return l.s }
