// Package consume runs a durable JetStream pull consumer with a pool of
// workers: the loop processor and notifier share. Each message is handed to
// one handler call, which acks, naks or terminates it itself.
package consume

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Handler handles one message to its ack, nak or term.
type Handler func(ctx context.Context, msg jetstream.Msg)

// Run pulls from cons with workers concurrent handlers until ctx ends, then
// stops pulling and waits for the handlers in flight. Handlers get a context
// that outlives ctx: a message being handled at shutdown is finished and
// acked, not abandoned halfway.
func Run(ctx context.Context, cons jetstream.Consumer, workers int, handle Handler, log *slog.Logger) error {
	// Next is safe for concurrent callers; the iterator keeps about two
	// messages per worker buffered.
	it, err := cons.Messages(jetstream.PullMaxMessages(2 * workers))
	if err != nil {
		return fmt.Errorf("pull %s: %w", cons.CachedInfo().Name, err)
	}
	log.Info("consuming", "consumer", cons.CachedInfo().Name, "workers", workers)
	hctx := context.WithoutCancel(ctx)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for {
				msg, err := it.Next()
				if err != nil {
					if !errors.Is(err, jetstream.ErrMsgIteratorClosed) {
						log.Error("pull stopped", "consumer", cons.CachedInfo().Name, "err", err)
					}
					return
				}
				handle(hctx, msg)
			}
		})
	}
	<-ctx.Done()
	it.Drain()
	wg.Wait()
	return nil
}

// BatchHandler handles a batch of messages, each to its ack, nak or term.
type BatchHandler func(ctx context.Context, msgs []jetstream.Msg)

// batchGather is how long a worker waits for more messages once it holds
// one: a backlog fills batches, a trickle is not held back.
const batchGather = time.Millisecond

// RunBatches is Run with handlers that take up to batch messages at a time:
// each worker blocks for one message, then takes what else has arrived, up
// to batch. Shutdown is as in Run.
//
// One goroutine reads the iterator and hands messages over a channel: the
// iterator's Next holds a lock while it waits, so a worker's short wait for
// more would queue behind another worker's long wait for the next message.
func RunBatches(ctx context.Context, cons jetstream.Consumer, workers, batch int, handle BatchHandler, log *slog.Logger) error {
	it, err := cons.Messages(jetstream.PullMaxMessages(2 * workers * batch))
	if err != nil {
		return fmt.Errorf("pull %s: %w", cons.CachedInfo().Name, err)
	}
	log.Info("consuming in batches", "consumer", cons.CachedInfo().Name, "workers", workers, "batch", batch)
	hctx := context.WithoutCancel(ctx)
	in := make(chan jetstream.Msg, batch)
	var wg sync.WaitGroup
	wg.Go(func() {
		defer close(in)
		for {
			msg, err := it.Next()
			if err != nil {
				if !errors.Is(err, jetstream.ErrMsgIteratorClosed) {
					log.Error("pull stopped", "consumer", cons.CachedInfo().Name, "err", err)
				}
				return
			}
			in <- msg
		}
	})
	for range workers {
		wg.Go(func() {
			msgs := make([]jetstream.Msg, 0, batch)
			for msg := range in {
				msgs = append(msgs[:0], msg)
				msgs = gather(in, msgs, batch)
				handle(hctx, msgs)
			}
		})
	}
	<-ctx.Done()
	it.Drain()
	wg.Wait()
	return nil
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
