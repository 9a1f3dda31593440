package consume

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/esimflow/esimflow/shared/stream"
	"github.com/esimflow/esimflow/shared/telemetry"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"
)

// Handler decides the outcome of one message. It never acks, naks nor
// terminates the message: settle does, from the outcome. ctx carries the
// message's span.
type Handler func(ctx context.Context, m *Msg) Outcome

// BatchHandler decides the outcomes of a batch of messages, one per message
// and in their order. A message it cannot finish gets Alone (the zero
// Outcome), and the pipeline hands it to the single-message Handler.
type BatchHandler func(ctx context.Context, msgs []*Msg) []Outcome

// Msg is a delivered message with its metadata, read once.
type Msg struct {
	jetstream.Msg
	Meta *jetstream.MsgMetadata
	span trace.Span
}

// Seq is the message's sequence in its stream.
func (m *Msg) Seq() uint64 { return m.Meta.Sequence.Stream }

// Traced returns ctx with the message's span, which continues the trace its
// headers carry: what a batch handler hands on (in an intent's headers, say)
// for one message of the batch.
func (m *Msg) Traced(ctx context.Context) context.Context { return trace.ContextWithSpan(ctx, m.span) }

// Settled is what settle did with a message, for the pipeline's Observe.
type Settled struct {
	Outcome Outcome
	// Result is the Outcome's Label when acked, else ResultRetry, ResultWait
	// or ResultDeadLetter.
	Result string
	Err    error // the cause, nil when acked
}

// Results of messages that were not acked.
const (
	ResultRetry      = "retry"       // nak'ed with a delay after a failure
	ResultWait       = "wait"        // nak'ed with a delay, no failure
	ResultDeadLetter = "dead_letter" // in ESIM_DLQ, and terminated
)

// Pipeline pulls a durable consumer's messages, runs a handler on each and
// settles the outcomes. Its fields are set once, before Run.
type Pipeline struct {
	// Kind names the stream in dead-letter subjects and ids: "events" or
	// "notify".
	Kind       string
	Names      stream.Names
	MaxDeliver int       // the consumer's MaxDeliver: the last delivery dead-letters
	Publisher  Publisher // writes dead letters
	// Key is the dedupe key a dead letter carries; nil means the original's
	// Nats-Msg-Id.
	Key func(hdr nats.Header, data []byte) string
	// Ready reports whether what a held message needs answers again; nil
	// makes Hold act as Fail.
	Ready func(ctx context.Context) bool
	// Observe, when set, is told what became of each message (metrics).
	Observe func(ctx context.Context, m *Msg, s Settled)
	Tracer  trace.Tracer // nil: no tracing
	Span    string       // the name of each message's span
	Log     *slog.Logger
}

// Run pulls from cons with workers concurrent handlers until ctx ends, then
// stops pulling and waits for the handlers in flight. Handlers get a context
// that outlives ctx: a message being handled at shutdown is finished and
// settled, not abandoned halfway.
//
// Run returns nil when ctx ends, and an error when the pull dies under it
// (the consumer was deleted, say): a consumer that stops pulling is an exit,
// so its orchestrator restarts the service, not a log line.
func (p *Pipeline) Run(ctx context.Context, cons jetstream.Consumer, workers int, h Handler) error {
	return p.run(ctx, cons, workers, 1, nil, h)
}

// RunBatches is Run with a handler that takes up to batch messages at a
// time: each worker blocks for one message, then takes what else has
// arrived, up to batch. Messages the batch leaves Alone go through h.
func (p *Pipeline) RunBatches(ctx context.Context, cons jetstream.Consumer, workers, batch int, bh BatchHandler, h Handler) error {
	return p.run(ctx, cons, workers, max(batch, 1), bh, h)
}

// batchGather is how long a worker waits for more messages once it holds
// one: a backlog fills batches, a trickle is not held back.
const batchGather = time.Millisecond

// run reads the iterator in one goroutine and hands messages over a channel:
// the iterator's Next holds a lock while it waits, so a worker's short wait
// for more would queue behind another worker's long wait for the next message.
func (p *Pipeline) run(ctx context.Context, cons jetstream.Consumer, workers, batch int, bh BatchHandler, h Handler) error {
	name := cons.CachedInfo().Name
	it, err := cons.Messages(jetstream.PullMaxMessages(2 * workers * batch))
	if err != nil {
		return fmt.Errorf("pull %s: %w", name, err)
	}
	p.Log.Info("consuming", "consumer", name, "workers", workers, "batch", batch)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var died error // read after wg.Wait
	in := make(chan jetstream.Msg, batch)
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(in)
		for {
			msg, err := it.Next()
			if errors.Is(err, jetstream.ErrNoHeartbeat) {
				// The server went quiet (restarted, stopped, or the
				// consumer's leader moved): the iterator pulls again.
				p.Log.Warn("no heartbeat from the server, pulling again", "consumer", name)
				continue
			}
			if err != nil {
				if !errors.Is(err, jetstream.ErrMsgIteratorClosed) {
					died = fmt.Errorf("pull %s stopped: %w", name, err)
					cancel()
				}
				return
			}
			in <- msg
		}
	})
	hctx, stop := context.WithoutCancel(ctx), ctx.Done()
	for range workers {
		wg.Go(func() {
			msgs := make([]jetstream.Msg, 0, batch)
			for msg := range in {
				if bh == nil {
					p.handleOne(hctx, stop, msg, h)
					continue
				}
				msgs = gather(in, append(msgs[:0], msg), batch)
				p.handleBatch(hctx, stop, msgs, bh, h)
			}
		})
	}
	<-ctx.Done()
	it.Drain()
	wg.Wait()
	return died
}

// gather adds to msgs what arrives on in within batchGather, up to batch.
func gather(in <-chan jetstream.Msg, msgs []jetstream.Msg, batch int) []jetstream.Msg {
	timer := time.NewTimer(batchGather)
	defer timer.Stop()
	for len(msgs) < batch {
		select {
		case m, ok := <-in:
			if !ok {
				return msgs
			}
			msgs = append(msgs, m)
		case <-timer.C:
			return msgs
		}
	}
	return msgs
}

func (p *Pipeline) tracer() trace.Tracer {
	if p.Tracer == nil {
		return telemetry.OrNoop(nil).Tracer("")
	}
	return p.Tracer
}
