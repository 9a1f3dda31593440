package notifier_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/esimflow/esimflow/notifier"
	"github.com/esimflow/esimflow/notifier/channel"
	"github.com/esimflow/esimflow/shared/admin"
	"github.com/esimflow/esimflow/shared/config"
	"github.com/esimflow/esimflow/shared/intent"
	"github.com/esimflow/esimflow/shared/natstest"
	"github.com/esimflow/esimflow/shared/redistest"
	"github.com/esimflow/esimflow/shared/store"
	"github.com/esimflow/esimflow/shared/store/kvstore"
	"github.com/esimflow/esimflow/shared/store/redisstore"
	"github.com/esimflow/esimflow/shared/stream"
	"github.com/esimflow/esimflow/shared/testns"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// BenchmarkNotifierDrain drains a backlog of intents through a whole
// notifier (claims, checks, contact lookup, render, the console channel to
// io.Discard, marks and log writes), with each store, and reports the
// messages per second and the store round trips per message (calls of the
// store's methods; a batched method is one round trip). Half the intents
// are activations, half 80 % warnings superseded by a 100 % one that never
// comes (a claim state read each). ADR 0015 records the numbers.
//
//	go test -run '^$' -bench NotifierDrain -benchtime 3x ./notifier/
func BenchmarkNotifierDrain(b *testing.B) {
	for _, backend := range []string{"redis", "kv"} {
		b.Run("store="+backend, func(b *testing.B) {
			benchDrain(b, backend, 4000, contactsByTx)
		})
	}
	// The all-in-one's default: the console needs no contact, and none is
	// registered.
	b.Run("store=redis/contacts=none", func(b *testing.B) {
		benchDrain(b, "redis", 4000, contactsNone)
	})
	// Intents of profile and usage events, which name the order and not
	// the transactionId: the contact is under the order's (the pipeline's
	// case, and the bench harness's).
	b.Run("store=redis/contacts=order", func(b *testing.B) {
		benchDrain(b, "redis", 4000, contactsByOrder)
	})
}

// drainContacts says where the drained intents' contacts are.
type drainContacts int

const (
	contactsByTx    drainContacts = iota // under the intent's transactionId
	contactsNone                         // nowhere
	contactsByOrder                      // under the transactionId of the order the intent names
)

func benchDrain(b *testing.B, backend string, backlog int, contacts drainContacts) {
	srv := natstest.Start(b)
	nc := srv.Connect(b)
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	ns := testns.New(b)
	// The notifier's settings from the environment (ESIMFLOW_NOTIFY_BATCH,
	// say), in a namespace of its own.
	cfg, err := config.Load(func(k string) string {
		if k == "ESIMFLOW_NAMESPACE" {
			return ns
		}
		return os.Getenv(k)
	})
	if err != nil {
		b.Fatal(err)
	}
	names := stream.NewNames(ns)
	ctx := context.Background()
	_, cons, err := stream.Ensure(ctx, js, names, stream.Limits{Replicas: 1, EventsMaxBytes: -1, MaxDeliver: cfg.MaxDeliver})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { deleteStreams(js, names) })
	var st store.Store
	if backend == "redis" {
		client := redistest.Client(b)
		redistest.RemovePrefix(b, client, ns)
		st, err = redisstore.New(client, redisstore.Options{Namespace: ns, SeenTTL: time.Hour})
	} else {
		st, err = kvstore.New(ctx, js, kvstore.Options{Namespace: ns, SeenTTL: time.Hour})
	}
	if err != nil {
		b.Fatal(err)
	}
	counted := &countingStore{Store: st}
	sent := &countingChannel{Channel: channel.NewConsole(io.Discard)}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))

	var trips, msgs int64
	var elapsed, cpu time.Duration
	for i := range b.N {
		b.StopTimer()
		for j := range backlog {
			tx := fmt.Sprintf("tx-%d-%d", i, j)
			iccid := fmt.Sprintf("8988%d%06d", i, j)
			if contacts != contactsNone {
				if err := st.PutContact(ctx, store.Contact{TransactionID: tx, Email: "t@example.com"}); err != nil {
					b.Fatal(err)
				}
			}
			in := intent.Intent{ID: intent.ActivationID(tx), Kind: intent.Activation, ICCID: iccid, TransactionID: tx, EventAt: time.Now()}
			if j%2 == 1 {
				in = intent.Intent{ID: intent.LowDataID(tx, "1G", 80), Kind: intent.LowData, ICCID: iccid, TransactionID: tx, Threshold: 80,
					SupersededBy: []string{intent.LowDataID(tx, "1G", 100)}, EventAt: time.Now()}
			}
			if contacts == contactsByOrder {
				in.OrderNo, in.TransactionID = "O"+tx, ""
				if _, err := st.UpdateOrder(ctx, in.OrderNo, func(o *store.Order) (bool, error) {
					o.TransactionID = tx
					return true, nil
				}); err != nil {
					b.Fatal(err)
				}
			}
			data, _ := json.Marshal(in)
			m := nats.NewMsg(names.NotifySubject(string(in.Kind)))
			m.Data = data
			if _, err := js.PublishMsgAsync(m, jetstream.WithMsgID(in.ID), jetstream.WithStallWait(time.Minute)); err != nil {
				b.Fatal(err)
			}
		}
		select {
		case <-js.PublishAsyncComplete():
		case <-time.After(time.Minute):
			b.Fatal("publish did not complete")
		}
		counted.reset()
		want := sent.n.Load() + int64(backlog)
		s, err := notifier.New(cfg.Notifier, notifier.Deps{Consumer: cons, Publisher: js, Store: counted, Admin: admin.New(""),
			Logger: log, Owner: "bench", Channels: []notifier.Channel{sent}, Wake: nc})
		if err != nil {
			b.Fatal(err)
		}
		runCtx, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		b.StartTimer()
		start, cpu0 := time.Now(), cpuTime()
		wg.Go(func() {
			if err := s.Run(runCtx); err != nil {
				b.Error(err)
			}
		})
		deadline := time.Now().Add(5 * time.Minute)
		for sent.n.Load() < want && time.Now().Before(deadline) {
			time.Sleep(time.Millisecond)
		}
		elapsed, cpu = elapsed+time.Since(start), cpu+cpuTime()-cpu0
		b.StopTimer()
		cancel()
		wg.Wait()
		if got := sent.n.Load(); got < want {
			b.Fatalf("%d of %d messages sent in 5 minutes", got-want+int64(backlog), backlog)
		}
		trips += counted.total()
		msgs += int64(backlog)
		if i == b.N-1 {
			b.Logf("round trips by method, last run: %s", counted)
		}
	}
	b.ReportMetric(float64(msgs)/elapsed.Seconds(), "msgs/s")
	b.ReportMetric(float64(trips)/float64(msgs), "trips/msg")
	// The process's CPU (the notifier and the benchmark; the servers are
	// apart, unless NATS is embedded): on a shared box, steadier than msgs/s.
	b.ReportMetric(float64(cpu.Microseconds())/float64(msgs), "cpu-µs/msg")
}

// cpuTime is the CPU time the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func deleteStreams(js jetstream.JetStream, names stream.Names) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, s := range []string{stream.Events, stream.Notify, stream.DLQ} {
		_ = js.DeleteStream(ctx, names.Stream(s))
	}
}

// countingChannel counts the messages it took.
type countingChannel struct {
	notifier.Channel
	n atomic.Int64
}

func (c *countingChannel) Send(ctx context.Context, m channel.Message) error {
	if err := c.Channel.Send(ctx, m); err != nil {
		return err
	}
	c.n.Add(1)
	return nil
}

// countingStore counts the calls of each store method the notifier makes:
// one round trip each (the batched methods too).
type countingStore struct {
	store.Store
	mu    sync.Mutex
	calls map[string]int64
}

func (s *countingStore) count(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.calls == nil {
		s.calls = map[string]int64{}
	}
	s.calls[name]++
}

func (s *countingStore) reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = nil
}

func (s *countingStore) get(name string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.calls[name]
}

func (s *countingStore) total() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n int64
	for _, c := range s.calls {
		n += c
	}
	return n
}

func (s *countingStore) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(s.calls)) {
		parts = append(parts, fmt.Sprintf("%s=%d", k, s.calls[k]))
	}
	return strings.Join(parts, " ")
}

func (s *countingStore) Claim(ctx context.Context, id, owner string, lease time.Duration) (store.Claim, error) {
	s.count("Claim")
	return s.Store.Claim(ctx, id, owner, lease)
}

func (s *countingStore) Finish(ctx context.Context, id, owner string, state store.ClaimState) error {
	s.count("Finish")
	return s.Store.Finish(ctx, id, owner, state)
}

func (s *countingStore) Release(ctx context.Context, id, owner string) error {
	s.count("Release")
	return s.Store.Release(ctx, id, owner)
}

func (s *countingStore) ClaimState(ctx context.Context, id string) (store.ClaimState, error) {
	s.count("ClaimState")
	return s.Store.ClaimState(ctx, id)
}

func (s *countingStore) AppendNotification(ctx context.Context, n store.Notification) error {
	s.count("AppendNotification")
	return s.Store.AppendNotification(ctx, n)
}

func (s *countingStore) Notifications(ctx context.Context, iccid string) ([]store.Notification, error) {
	s.count("Notifications")
	return s.Store.Notifications(ctx, iccid)
}

func (s *countingStore) Contact(ctx context.Context, tx string) (store.Contact, error) {
	s.count("Contact")
	return s.Store.Contact(ctx, tx)
}

func (s *countingStore) ContactByICCID(ctx context.Context, iccid string) (store.Contact, error) {
	s.count("ContactByICCID")
	return s.Store.ContactByICCID(ctx, iccid)
}

func (s *countingStore) Profile(ctx context.Context, iccid string) (store.Profile, error) {
	s.count("Profile")
	return s.Store.Profile(ctx, iccid)
}

func (s *countingStore) Order(ctx context.Context, orderNo string) (store.Order, error) {
	s.count("Order")
	return s.Store.Order(ctx, orderNo)
}

func (s *countingStore) Park(ctx context.Context, key, id string, body []byte, ttl time.Duration) error {
	s.count("Park")
	return s.Store.Park(ctx, key, id, body, ttl)
}

func (s *countingStore) Parked(ctx context.Context, key string) (map[string][]byte, error) {
	s.count("Parked")
	return s.Store.Parked(ctx, key)
}

func (s *countingStore) Unpark(ctx context.Context, key string, ids ...string) error {
	s.count("Unpark")
	return s.Store.Unpark(ctx, key, ids...)
}

func (s *countingStore) ReadState(ctx context.Context, snap *store.Snapshot, orderNos, iccids []string) error {
	s.count("ReadState")
	return s.Store.ReadState(ctx, snap, orderNos, iccids)
}

func (s *countingStore) ClaimMany(ctx context.Context, ids []string, owner string, lease time.Duration) ([]store.Claim, error) {
	s.count("ClaimMany")
	return s.Store.ClaimMany(ctx, ids, owner, lease)
}

func (s *countingStore) FinishMany(ctx context.Context, ids []string, owner string, states []store.ClaimState) ([]error, error) {
	s.count("FinishMany")
	return s.Store.FinishMany(ctx, ids, owner, states)
}

func (s *countingStore) ClaimStates(ctx context.Context, ids []string) ([]store.ClaimState, error) {
	s.count("ClaimStates")
	return s.Store.ClaimStates(ctx, ids)
}

func (s *countingStore) AppendNotifications(ctx context.Context, ns []store.Notification) error {
	s.count("AppendNotifications")
	return s.Store.AppendNotifications(ctx, ns)
}

func (s *countingStore) ContactMany(ctx context.Context, txs []string) (map[string]store.Contact, error) {
	s.count("ContactMany")
	return s.Store.ContactMany(ctx, txs)
}

func (s *countingStore) ContactManyByICCID(ctx context.Context, iccids []string) (map[string]store.Contact, error) {
	s.count("ContactManyByICCID")
	return s.Store.ContactManyByICCID(ctx, iccids)
}

func (s *countingStore) ParkedMany(ctx context.Context, keys []string) ([]map[string][]byte, error) {
	s.count("ParkedMany")
	return s.Store.ParkedMany(ctx, keys)
}
