package stream

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/esimflow/esimflow/shared/natstest"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
)

// TestBatchPublisherConcurrent has many goroutines publish at once, new
// ids, then a quarter of them an id already stored and a few the same new
// id twice:
// each gets the answer it would have had alone — its message stored at the
// sequence acked, a duplicate told so with the original's sequence — and
// every id is stored once. On the newest server most go in batches; on
// ESIMFLOW_TEST_NATS_URL's (Debian's 2.9.10) every one goes alone.
func TestBatchPublisherConcurrent(t *testing.T) {
	onEachServer(t, func(t *testing.T, name string, js jetstream.JetStream, names Names, p *BatchPublisher) {
		ctx := context.Background()
		if want := name == "embedded"; p.Batching() != want {
			t.Fatalf("batching on %s = %v, want %v", js.Conn().ConnectedServerVersion(), p.Batching(), want)
		}
		const n = 200
		id := func(i int) string {
			if i%50 == 1 { // the same id as the message before it
				i--
			}
			return fmt.Sprintf("id-%d", i)
		}
		old := map[string]uint64{}
		for i := 0; i < n; i += 4 { // stored already: a duplicate now
			ack, err := js.PublishMsg(ctx, eventMsg(names, id(i), "old"))
			if err != nil {
				t.Fatal(err)
			}
			old[id(i)] = ack.Sequence
		}
		// New ids first: they share batches. (A batch holding an id
		// already stored is refused whole and published one by one, so
		// the round below, with one in four, may batch nothing.)
		for round := range 3 {
			acks, errs := make([]*jetstream.PubAck, n), make([]error, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					acks[i], errs[i] = p.PublishMsg(ctx, eventMsg(names, fmt.Sprintf("r%d-%d", round, i), fmt.Sprint(i)))
				})
			}
			wg.Wait()
			checkAcks(t, js, names, acks, errs)
		}
		if name == "embedded" && p.batched.Load() == 0 {
			t.Error("no message went in a batch")
		}
		acks, errs := make([]*jetstream.PubAck, n), make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() { acks[i], errs[i] = p.PublishMsg(ctx, eventMsg(names, id(i), fmt.Sprint(i))) })
		}
		wg.Wait()
		for i := range n {
			if errs[i] != nil {
				t.Fatalf("publish %d: %v", i, errs[i])
			}
			if seq, ok := old[id(i)]; ok && (!acks[i].Duplicate || acks[i].Sequence != seq) {
				t.Errorf("%s stored at %d before: ack %+v, want a duplicate of it", id(i), seq, acks[i])
			}
		}
		checkAcks(t, js, names, acks, errs)
		s, err := js.Stream(ctx, names.Stream(Events))
		if err != nil {
			t.Fatal(err)
		}
		info, err := s.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		// Each distinct id once: 3n new, and n - n/50 in the last round
		// (the old ones among them).
		if want := uint64(3*n + n - n/50); info.State.Msgs != want {
			t.Errorf("stream holds %d messages, want %d (each id once)", info.State.Msgs, want)
		}
		t.Logf("%s: %d of %d messages stored in batches", name, p.batched.Load(), 4*n)
	})
}

// TestBatchPublisherRefused fills a small stream while many publish at
// once: a publish answered without error is stored at the sequence acked,
// one refused is answered an error, never a silent drop — the full
// stream's refusal of a whole batch reaches each of its publishers.
func TestBatchPublisherRefused(t *testing.T) {
	onEachServer(t, func(t *testing.T, name string, js jetstream.JetStream, names Names, p *BatchPublisher) {
		ctx := context.Background()
		s, err := js.Stream(ctx, names.Stream(Events))
		if err != nil {
			t.Fatal(err)
		}
		cfg := s.CachedInfo().Config
		cfg.MaxBytes = 16 << 10
		if _, err := js.UpdateStream(ctx, cfg); err != nil {
			t.Fatal(err)
		}
		const n = 200
		acks, errs := make([]*jetstream.PubAck, n), make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				acks[i], errs[i] = p.PublishMsg(ctx, eventMsg(names, fmt.Sprintf("id-%d", i), string(make([]byte, 256))))
			})
		}
		wg.Wait()
		stored, refused := checkAcks(t, js, names, acks, errs)
		if stored == 0 || refused == 0 {
			t.Fatalf("%d stored, %d refused: the stream should have filled", stored, refused)
		}
		info, err := s.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.State.Msgs != uint64(stored) {
			t.Errorf("stream holds %d messages, %d were acked", info.State.Msgs, stored)
		}
	})
}

// TestBatchPublisherAsync publishes as the processor publishes a batch's
// intents — all first, then awaits every future — some of them again:
// each future settles with its message's PubAck (a duplicate's for the
// repeats), and on the newest server they went in batches.
func TestBatchPublisherAsync(t *testing.T) {
	onEachServer(t, func(t *testing.T, name string, js jetstream.JetStream, names Names, p *BatchPublisher) {
		const n = 100
		for round := range 2 { // the second publishes every id again
			futures := make([]jetstream.PubAckFuture, n)
			for i := range n {
				f, err := p.PublishMsgAsync(eventMsg(names, fmt.Sprintf("id-%d", i), fmt.Sprint(i)))
				if err != nil {
					t.Fatal(err)
				}
				futures[i] = f
			}
			acks, errs := make([]*jetstream.PubAck, n), make([]error, n)
			for i, f := range futures {
				select {
				case acks[i] = <-f.Ok():
				case errs[i] = <-f.Err():
				case <-time.After(10 * time.Second):
					t.Fatalf("future %d did not settle", i)
				}
				if errs[i] == nil && acks[i].Duplicate != (round == 1) {
					t.Errorf("round %d, publish %d: duplicate %v", round, i, acks[i].Duplicate)
				}
				if f.Msg().Header.Get(jetstream.MsgIDHeader) != fmt.Sprintf("id-%d", i) {
					t.Errorf("future %d holds message %v", i, f.Msg().Header)
				}
			}
			if _, refused := checkAcks(t, js, names, acks, errs); refused > 0 {
				t.Errorf("round %d: %d refused", round, refused)
			}
		}
		if name == "embedded" && p.batched.Load() == 0 {
			t.Error("no message went in a batch")
		}
	})
}

// TestBatchPublisherPassesOthers: a message to another stream, or without
// a Nats-Msg-Id, or with publish options, goes alone through jetstream.
func TestBatchPublisherPassesOthers(t *testing.T) {
	onEachServer(t, func(t *testing.T, name string, js jetstream.JetStream, names Names, p *BatchPublisher) {
		ctx := context.Background()
		m := nats.NewMsg(names.RejectedSubject())
		m.Data = []byte("x")
		if ack, err := p.PublishMsg(ctx, m); err != nil || ack.Stream != names.Stream(Rejected) {
			t.Errorf("rejected body: %+v, %v", ack, err)
		}
		m = eventMsg(names, "", "no id")
		if ack, err := p.PublishMsg(ctx, m); err != nil || ack.Stream != names.Stream(Events) {
			t.Errorf("event without id: %+v, %v", ack, err)
		}
		m = eventMsg(names, "", "option")
		if ack, err := p.PublishMsg(ctx, m, jetstream.WithMsgID("opt")); err != nil || ack.Stream != names.Stream(Events) {
			t.Errorf("event with an option: %+v, %v", ack, err)
		}
		if ack, err := p.PublishMsg(ctx, eventMsg(names, "", "option"), jetstream.WithMsgID("opt")); err != nil || !ack.Duplicate {
			t.Errorf("the option's id again: %+v, %v; want a duplicate", ack, err)
		}
	})
}

func TestSubjectMatches(t *testing.T) {
	for _, c := range []struct {
		filter, subject string
		want            bool
	}{
		{"esim.events.>", "esim.events.order_status", true},
		{"esim.events.>", "esim.events.a.b", true},
		{"esim.events.>", "esim.events", false},
		{"esim.events.>", "esim.rejected", false},
		{"ns.esim.events.>", "esim.events.x", false},
		{"esim.*.x", "esim.events.x", true},
		{"esim.*.x", "esim.events.y", false},
		{"esim.rejected", "esim.rejected", true},
		{"esim.rejected", "esim.rejected.x", false},
		{"esim.rejected.x", "esim.rejected", false},
	} {
		if got := subjectMatches(c.filter, c.subject); got != c.want {
			t.Errorf("subjectMatches(%q, %q) = %v, want %v", c.filter, c.subject, got, c.want)
		}
	}
}

// checkAcks holds each answer to the invariant: an ack means the message
// is stored at its sequence (a duplicate: its id is), an error that it is
// not. It returns how many of each.
func checkAcks(t *testing.T, js jetstream.JetStream, names Names, acks []*jetstream.PubAck, errs []error) (stored, refused int) {
	t.Helper()
	ctx := context.Background()
	s, err := js.Stream(ctx, names.Stream(Events))
	if err != nil {
		t.Fatal(err)
	}
	seqs := map[uint64]int{}
	for i := range acks {
		if errs[i] != nil {
			if errors.Is(errs[i], context.DeadlineExceeded) {
				t.Errorf("publish %d: %v: outcome unknown", i, errs[i])
			}
			refused++
			continue
		}
		stored++
		if !acks[i].Duplicate {
			if j, ok := seqs[acks[i].Sequence]; ok {
				t.Errorf("publishes %d and %d both stored at %d", j, i, acks[i].Sequence)
			}
			seqs[acks[i].Sequence] = i
		}
		if acks[i].Stream != names.Stream(Events) {
			t.Errorf("publish %d acked by stream %q", i, acks[i].Stream)
		}
		m, err := s.GetMsg(ctx, acks[i].Sequence)
		if err != nil {
			t.Errorf("publish %d acked at %d: %v", i, acks[i].Sequence, err)
			continue
		}
		if !acks[i].Duplicate && string(m.Data) != fmt.Sprint(i) && len(m.Data) != 256 {
			t.Errorf("publish %d acked at %d, which holds %q", i, acks[i].Sequence, m.Data)
		}
	}
	return stored, refused
}

func eventMsg(names Names, id, data string) *nats.Msg {
	m := nats.NewMsg(names.EventSubject("ORDER_STATUS"))
	m.Data = []byte(data)
	if id != "" {
		m.Header.Set(jetstream.MsgIDHeader, id)
	}
	return m
}

// onEachServer runs run with a BatchPublisher on ESIM_EVENTS as EnsureStreams
// made it, on the newest server and on ESIMFLOW_TEST_NATS_URL's.
func onEachServer(t *testing.T, run func(t *testing.T, name string, js jetstream.JetStream, names Names, p *BatchPublisher)) {
	natstest.OnEachServer(t, func(t *testing.T, name string, js jetstream.JetStream, ns string) {
		names := NewNames(ns)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := EnsureStreams(ctx, js, names, Limits{Replicas: 1, EventsMaxAge: time.Hour, EventsMaxBytes: -1, MaxDeliver: 10}); err != nil {
			t.Fatal(err)
		}
		p, err := NewBatchPublisher(ctx, js, names.Stream(Events))
		if err != nil {
			t.Fatal(err)
		}
		run(t, name, js, names, p)
	})
}

// BenchmarkBatchPublisher publishes from 64 goroutines at once, as ingest's
// connections do, to ESIM_EVENTS on the all-in-one's server (in process,
// fsync before every ack), through a BatchPublisher and alone, back to back.
func BenchmarkBatchPublisher(b *testing.B) {
	js := natstest.InProcessSyncAlways(b)
	ctx := context.Background()
	names := NewNames("")
	if err := EnsureStreams(ctx, js, names, Limits{Replicas: 1, EventsMaxBytes: -1, MaxDeliver: 10}); err != nil {
		b.Fatal(err)
	}
	p, err := NewBatchPublisher(ctx, js, names.Stream(Events))
	if err != nil {
		b.Fatal(err)
	}
	if !p.Batching() {
		b.Fatal("the embedded server takes no atomic batches")
	}
	body := []byte(`{"notifyType":"ORDER_STATUS","content":{"orderNo":"B2026112900001","orderStatus":"GOT_RESOURCE"}}`)
	for _, c := range []struct {
		name string
		pub  interface {
			PublishMsg(context.Context, *nats.Msg, ...jetstream.PublishOpt) (*jetstream.PubAck, error)
		}
	}{{"alone", js}, {"batched", p}} {
		b.Run(c.name, func(b *testing.B) {
			p.batched.Store(0)
			p.batches.Store(0)
			run := c.name + "-" + nuid.Next() // new ids each time: a duplicate costs no fsync
			var next atomic.Int64
			b.SetParallelism(64 / max(1, runtime.GOMAXPROCS(0)))
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					m := nats.NewMsg(names.EventSubject("ORDER_STATUS"))
					m.Data = body
					m.Header.Set(jetstream.MsgIDHeader, fmt.Sprintf("%s-%d", run, next.Add(1)))
					if _, err := c.pub.PublishMsg(ctx, m); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msg/s")
			if c.pub == p && p.batches.Load() > 0 {
				b.ReportMetric(float64(p.batched.Load())/float64(p.batches.Load()), "msgs/batch")
				b.ReportMetric(float64(p.batched.Load())/float64(b.N), "batched/msg")
			}
		})
	}
}
