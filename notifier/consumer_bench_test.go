package notifier_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wmjs "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/jetstream"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/esimflow/esimflow/shared/consume"
	"github.com/esimflow/esimflow/shared/natstest"
	"github.com/esimflow/esimflow/shared/stream"
	"github.com/esimflow/esimflow/shared/testns"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// BenchmarkConsumers drains a backlog of intents from the notifier's durable
// consumer with a handler that stands for a channel send (a fixed latency),
// three ways: the consume pipeline with a worker pool (what the notifier runs),
// and Watermill's router over watermill-nats' JetStream subscriber with one
// handler and with four on the same durable. ADR 0003 records the numbers.
//
//	go test -run '^$' -bench Consumers -benchtime 3x ./notifier/
func BenchmarkConsumers(b *testing.B) {
	const backlog = 400
	for _, latency := range []time.Duration{0, 5 * time.Millisecond, 50 * time.Millisecond} {
		for _, c := range []struct {
			name string
			run  func(b *testing.B, nc *nats.Conn, cons jetstream.Consumer, names stream.Names, handle func()) func()
		}{
			{"iterator-4-workers", runIterator(4)},
			{"watermill-1-handler", runWatermill(1)},
			{"watermill-4-handlers", runWatermill(4)},
		} {
			b.Run(fmt.Sprintf("send=%v/%s", latency, c.name), func(b *testing.B) {
				srv := natstest.StartEmbedded(b)
				nc := srv.Connect(b)
				js, err := jetstream.New(nc)
				if err != nil {
					b.Fatal(err)
				}
				names := stream.NewNames(testns.New(b))
				_, cons, err := stream.Ensure(context.Background(), js, names, stream.Limits{Replicas: 1, EventsMaxBytes: -1, MaxDeliver: 10})
				if err != nil {
					b.Fatal(err)
				}
				var handled atomic.Int64
				stop := c.run(b, nc, cons, names, func() {
					time.Sleep(latency) // the channel's round trip
					handled.Add(1)
				})
				defer stop()
				b.ResetTimer()
				start := time.Now()
				for i := range b.N {
					for j := range backlog {
						if _, err := js.PublishAsync(names.NotifySubject("activation"), []byte(fmt.Sprintf(`{"id":"activation:%d-%d"}`, i, j)), jetstream.WithStallWait(time.Minute)); err != nil {
							b.Fatal(err)
						}
					}
					for handled.Load() < int64((i+1)*backlog) {
						time.Sleep(time.Millisecond)
					}
				}
				b.ReportMetric(float64(b.N*backlog)/time.Since(start).Seconds(), "msgs/s")
			})
		}
	}
}

func runIterator(workers int) func(*testing.B, *nats.Conn, jetstream.Consumer, stream.Names, func()) func() {
	return func(b *testing.B, _ *nats.Conn, cons jetstream.Consumer, _ stream.Names, handle func()) func() {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			p := &consume.Pipeline{Kind: "notify", MaxDeliver: 10, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}
			_ = p.Run(ctx, cons, workers, func(context.Context, *consume.Msg) consume.Outcome {
				handle()
				return consume.Ack("sent")
			})
		}()
		return func() { cancel(); <-done }
	}
}

func runWatermill(handlers int) func(*testing.B, *nats.Conn, jetstream.Consumer, stream.Names, func()) func() {
	return func(b *testing.B, nc *nats.Conn, cons jetstream.Consumer, names stream.Names, handle func()) func() {
		durable := cons.CachedInfo().Name
		sub, err := wmjs.NewSubscriber(wmjs.SubscriberConfig{
			Conn:   nc,
			Logger: watermill.NopLogger{},
			ResourceInitializer: wmjs.ExistingConsumer(func(string, string) jetstream.ConsumerConfig {
				return jetstream.ConsumerConfig{Name: durable}
			}, ""),
			AckWaitTimeout: stream.AckWait,
		})
		if err != nil {
			b.Fatal(err)
		}
		router, err := message.NewRouter(message.RouterConfig{CloseTimeout: 10 * time.Second}, watermill.NopLogger{})
		if err != nil {
			b.Fatal(err)
		}
		for i := range handlers {
			router.AddConsumerHandler(fmt.Sprintf("notify-%d", i), names.Stream(stream.Notify), sub, func(*message.Message) error {
				handle()
				return nil
			})
		}
		done := make(chan struct{})
		go func() {
			defer close(done)
			_ = router.Run(context.Background())
		}()
		<-router.Running()
		return func() { _ = router.Close(); <-done }
	}
}
