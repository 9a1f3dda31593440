package consume_test

import (
	"context"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/esimflow/esimflow/shared/consume"
	"github.com/esimflow/esimflow/shared/natstest"
	"github.com/esimflow/esimflow/shared/poll"
	"github.com/nats-io/nats.go/jetstream"
)

// TestRunBatchesTrickle: with several batch workers waiting, a lone message
// is handled at once, and a burst is handled whole, each message once.
// (A worker gathering more once held the iterator's lock behind another
// worker's wait for the next message, so a lone message sat until the next.)
func TestRunBatchesTrickle(t *testing.T) {
	for _, name := range []string{"embedded", "external"} {
		t.Run(name, func(t *testing.T) {
			srv := natstest.StartEmbedded
			if name == "external" {
				srv = natstest.External
			}
			s := srv(t)
			js, err := jetstream.New(s.Connect(t))
			if err != nil {
				t.Fatal(err)
			}
			streamName := "consumetest" + strconv.FormatInt(time.Now().UnixNano(), 36)
			ctx := context.Background()
			if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: streamName, Subjects: []string{streamName + ".>"}, Storage: jetstream.MemoryStorage}); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = js.DeleteStream(context.Background(), streamName) })
			cons, err := js.CreateOrUpdateConsumer(ctx, streamName, jetstream.ConsumerConfig{Durable: "c", AckPolicy: jetstream.AckExplicitPolicy})
			if err != nil {
				t.Fatal(err)
			}
			var mu sync.Mutex
			got := map[string]int{}
			var batches atomic.Int32
			runCtx, cancel := context.WithCancel(ctx)
			done := make(chan error, 1)
			p := &consume.Pipeline{Kind: "test", MaxDeliver: 5, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
			go func() {
				done <- p.RunBatches(runCtx, cons, 4, 32, func(_ context.Context, msgs []*consume.Msg) []consume.Outcome {
					batches.Add(1)
					outs := make([]consume.Outcome, len(msgs))
					for i, m := range msgs {
						mu.Lock()
						got[string(m.Data())]++
						mu.Unlock()
						outs[i] = consume.Ack("done")
					}
					return outs
				}, nil)
			}()
			defer func() {
				cancel()
				if err := <-done; err != nil {
					t.Error(err)
				}
			}()
			count := func() int {
				mu.Lock()
				defer mu.Unlock()
				return len(got)
			}
			if _, err := js.Publish(ctx, streamName+".a", []byte("lone")); err != nil {
				t.Fatal(err)
			}
			poll.Until(t, "the lone message", func() bool { return count() == 1 })
			for i := range 500 {
				if _, err := js.Publish(ctx, streamName+".a", []byte(strconv.Itoa(i))); err != nil {
					t.Fatal(err)
				}
			}
			poll.Until(t, "the burst", func() bool { return count() == 501 })
			mu.Lock()
			defer mu.Unlock()
			for k, n := range got {
				if n != 1 {
					t.Errorf("%s handled %d times", k, n)
				}
			}
		})
	}
}
