package consume

import (
	"errors"
	"fmt"
	"time"
)

// ErrPermanent marks failures redelivery cannot fix: a message that fails
// with it goes to the dead letters at once.
var ErrPermanent = errors.New("permanent")

// Permanent marks err as one redelivery cannot fix.
func Permanent(err error) error { return fmt.Errorf("%w: %w", ErrPermanent, err) }

// verdict is what settle does with a message.
type verdict int

const (
	alone verdict = iota // the zero Outcome: batches only, see Alone
	ack
	fail
	wait
	hold
	dead
)

// Outcome is a handler's decision about one message; settle carries it out.
// Build one with Ack, Fail, Wait, Hold, DeadLetter or Alone.
type Outcome struct {
	verdict verdict
	// Label says how an acked message was handled (applied, duplicate,
	// parked, sent, …); settle reports it to the pipeline's Observe.
	Label string
	// Type is what the message was (an event type, an intent kind), for
	// metrics; set it with For.
	Type  string
	cause error
	after time.Duration
}

// Ack: the message's work is done and stored; settle acks it.
func Ack(label string) Outcome { return Outcome{verdict: ack, Label: label} }

// Fail: the attempt failed with err. Settle retries the message after
// Backoff of its deliveries, or dead-letters it when err wraps ErrPermanent
// or its last delivery is spent.
func Fail(err error) Outcome { return Outcome{verdict: fail, cause: err} }

// Wait: the message cannot be handled yet, for a reason that is nobody's
// failure (why). Settle redelivers it after d, and dead-letters it when its
// last delivery is spent: a wait ends in the dead letters, not in silence.
func Wait(why string, d time.Duration) Outcome {
	return Outcome{verdict: wait, cause: errors.New(why), after: d}
}

// Hold: the attempt failed with err because something the message needs is
// down, not because of the message. Settle keeps the message in progress
// until the pipeline's Ready reports true, then runs the handler again.
func Hold(err error) Outcome { return Outcome{verdict: hold, cause: err} }

// DeadLetter: no retry can help; settle writes the dead letter with cause.
func DeadLetter(cause error) Outcome { return Outcome{verdict: dead, cause: cause} }

// Alone is the zero Outcome: in a batch, the message the batch could not
// finish, which the pipeline hands to the single-message handler.
func Alone() Outcome { return Outcome{} }

// After sets the least delay of a Fail's retry (what a channel asked for).
func (o Outcome) After(d time.Duration) Outcome { o.after = d; return o }

// For sets the Type of the message the outcome is about.
func (o Outcome) For(typ string) Outcome { o.Type = typ; return o }

// Acked reports whether the outcome is an Ack.
func (o Outcome) Acked() bool { return o.verdict == ack }

// Err is the outcome's cause: nil for Ack and Alone.
func (o Outcome) Err() error { return o.cause }

// Backoff spaces the retries of a message: 1s, 2s, 4s … after its first,
// second, third delivery, up to a minute. The consumers have no server-side
// BackOff (see shared/stream): this is the one retry schedule.
func Backoff(delivered uint64) time.Duration {
	return min(time.Second<<min(max(delivered, 1)-1, 6), time.Minute)
}
