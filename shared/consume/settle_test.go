package consume_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/esimflow/esimflow/shared/consume"
	"github.com/esimflow/esimflow/shared/natstest"
	"github.com/esimflow/esimflow/shared/stream"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// bench is a stream "<ns>.in.>" with a durable consumer, and the dead-letter
// subjects of namespace ns in a stream of their own.
type bench struct {
	js    jetstream.JetStream
	names stream.Names
	cons  jetstream.Consumer
	dlq   jetstream.Stream
}

func newBench(t *testing.T, s *natstest.Server, maxDeliver int) *bench {
	t.Helper()
	js, err := jetstream.New(s.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	ns := "ct" + strconv.FormatInt(time.Now().UnixNano(), 36)
	ctx := context.Background()
	for _, c := range []jetstream.StreamConfig{
		{Name: ns + "_IN", Subjects: []string{ns + ".in.>"}, Storage: jetstream.MemoryStorage},
		{Name: ns + "_DLQ", Subjects: []string{ns + ".esim.dlq.>"}, Storage: jetstream.MemoryStorage},
	} {
		if _, err := js.CreateStream(ctx, c); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = js.DeleteStream(context.Background(), c.Name) })
	}
	cons, err := js.CreateOrUpdateConsumer(ctx, ns+"_IN", jetstream.ConsumerConfig{Durable: "c", AckPolicy: jetstream.AckExplicitPolicy, MaxDeliver: maxDeliver})
	if err != nil {
		t.Fatal(err)
	}
	dlq, err := js.Stream(ctx, ns+"_DLQ")
	if err != nil {
		t.Fatal(err)
	}
	return &bench{js: js, names: stream.NewNames(ns), cons: cons, dlq: dlq}
}

func (b *bench) pipeline(maxDeliver int, observe func(consume.Settled)) *consume.Pipeline {
	var mu sync.Mutex
	return &consume.Pipeline{Kind: "test", Names: b.names, MaxDeliver: maxDeliver, Publisher: b.js,
		Observe: func(_ context.Context, _ *consume.Msg, s consume.Settled) { mu.Lock(); defer mu.Unlock(); observe(s) },
		Log:     slog.New(slog.NewTextHandler(io.Discard, nil))}
}

// TestSettle: each outcome ends where it should — acked, retried until the
// last delivery, dead-lettered with the one header schema and id.
func TestSettle(t *testing.T) {
	s := natstest.Start(t)
	for _, tc := range []struct {
		name   string
		decide func(delivery uint64) consume.Outcome
		want   []string // the results, delivery by delivery
		cause  string   // of the dead letter; "" for none
	}{
		{"ack", func(uint64) consume.Outcome { return consume.Ack("applied") }, []string{"applied"}, ""},
		{"permanent failure", func(uint64) consume.Outcome { return consume.Fail(consume.Permanent(errors.New("bad body"))) },
			[]string{consume.ResultDeadLetter}, "permanent: bad body"},
		{"transient failure until the last delivery", func(uint64) consume.Outcome { return consume.Fail(errors.New("timeout")) },
			[]string{consume.ResultRetry, consume.ResultRetry, consume.ResultDeadLetter}, "timeout"},
		{"failure then success", func(n uint64) consume.Outcome {
			if n == 1 {
				return consume.Fail(errors.New("timeout"))
			}
			return consume.Ack("applied")
		}, []string{consume.ResultRetry, "applied"}, ""},
		{"wait until the last delivery", func(uint64) consume.Outcome { return consume.Wait("no contact yet", time.Millisecond) },
			[]string{consume.ResultWait, consume.ResultWait, consume.ResultDeadLetter}, "permanent: deliveries exhausted while waiting (no contact yet)"},
		{"dead letter", func(uint64) consume.Outcome { return consume.DeadLetter(errors.New("planted")) },
			[]string{consume.ResultDeadLetter}, "planted"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			const maxDeliver = 3
			b := newBench(t, s, maxDeliver)
			var got []string
			done := make(chan struct{})
			p := b.pipeline(maxDeliver, func(st consume.Settled) {
				got = append(got, st.Result)
				if len(got) == len(tc.want) {
					close(done)
				}
			})
			ctx, cancel := context.WithCancel(context.Background())
			ran := make(chan error, 1)
			go func() {
				ran <- p.Run(ctx, b.cons, 1, func(_ context.Context, m *consume.Msg) consume.Outcome {
					return tc.decide(m.Meta.NumDelivered)
				})
			}()
			in := nats.NewMsg(b.names.Namespace() + ".in.x")
			in.Data = []byte(`{"id":"i1"}`)
			if _, err := b.js.PublishMsg(ctx, in, jetstream.WithMsgID("key-1")); err != nil {
				t.Fatal(err)
			}
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				t.Fatalf("results %v, want %v", got, tc.want)
			}
			cancel()
			if err := <-ran; err != nil {
				t.Fatal(err)
			}
			for i := range tc.want {
				if got[i] != tc.want[i] {
					t.Fatalf("results %v, want %v", got, tc.want)
				}
			}
			dl, err := b.dlq.GetLastMsgForSubject(context.Background(), b.names.DLQSubject("test"))
			if tc.cause == "" {
				if err == nil {
					t.Errorf("unexpected dead letter: %s", dl.Header.Get(stream.HeaderError))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := map[string]string{stream.HeaderError: tc.cause, stream.HeaderSubject: b.names.Namespace() + ".in.x",
				stream.HeaderSequence: "1", stream.HeaderDeliveries: strconv.Itoa(len(tc.want)), stream.HeaderDedupeKey: "key-1",
				jetstream.MsgIDHeader: consume.DeadLetterID("test", 1)}
			for k, v := range want {
				if g := dl.Header.Get(k); g != v {
					t.Errorf("dead letter header %s = %q, want %q", k, g, v)
				}
			}
		})
	}
}

// TestRunReturnsWhenPullDies: a consumer deleted under a running pipeline
// makes Run return an error, so the service exits and is restarted, rather
// than idle with a log line.
func TestRunReturnsWhenPullDies(t *testing.T) {
	for _, batch := range []int{1, 8} {
		t.Run("batch "+strconv.Itoa(batch), func(t *testing.T) {
			b := newBench(t, natstest.Start(t), 3)
			handled := make(chan struct{}, 1)
			p := b.pipeline(3, func(consume.Settled) { handled <- struct{}{} })
			ran := make(chan error, 1)
			ack := func(context.Context, *consume.Msg) consume.Outcome { return consume.Ack("done") }
			go func() {
				ran <- p.RunBatches(context.Background(), b.cons, 2, batch, func(_ context.Context, msgs []*consume.Msg) []consume.Outcome {
					return make([]consume.Outcome, len(msgs))
				}, ack)
			}()
			// Pulling for sure: one message went through.
			if _, err := b.js.Publish(context.Background(), b.names.Namespace()+".in.x", []byte("x")); err != nil {
				t.Fatal(err)
			}
			<-handled
			info := b.cons.CachedInfo()
			if err := b.js.DeleteConsumer(context.Background(), info.Stream, info.Name); err != nil {
				t.Fatal(err)
			}
			select {
			case err := <-ran:
				if err == nil {
					t.Fatal("Run returned nil after its consumer was deleted")
				}
				t.Log(err)
			case <-time.After(30 * time.Second):
				t.Fatal("Run still running 30s after its consumer was deleted")
			}
		})
	}
}
