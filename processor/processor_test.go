package processor_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/esimflow/esimflow/processor"
	"github.com/esimflow/esimflow/shared/dedupe"
	"github.com/esimflow/esimflow/shared/event"
	"github.com/esimflow/esimflow/shared/intent"
	"github.com/esimflow/esimflow/shared/poll"
	"github.com/esimflow/esimflow/shared/store"
	"github.com/esimflow/esimflow/shared/stream"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// failingIntents fails the first n intent publishes, as a NATS outage would.
type failingIntents struct {
	processor.Publisher
	left atomic.Int32
}

func (f *failingIntents) PublishMsg(ctx context.Context, m *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	if strings.Contains(m.Subject, "esim.notify.") && f.left.Add(-1) >= 0 {
		return nil, errors.New("injected: nats timeout")
	}
	return f.Publisher.PublishMsg(ctx, m, opts...)
}

func (f *failingIntents) PublishMsgAsync(m *nats.Msg, opts ...jetstream.PublishOpt) (jetstream.PubAckFuture, error) {
	if strings.Contains(m.Subject, "esim.notify.") && f.left.Add(-1) >= 0 {
		return nil, errors.New("injected: nats timeout")
	}
	return f.Publisher.PublishMsgAsync(m, opts...)
}

// rejectedIntents has the server reject, in its PubAck, the first intent
// published for one iccid: the publish goes out, its PubAck is an error.
type rejectedIntents struct {
	processor.Publisher
	iccid    string
	rejected atomic.Bool
}

func (f *rejectedIntents) PublishMsgAsync(m *nats.Msg, opts ...jetstream.PublishOpt) (jetstream.PubAckFuture, error) {
	var in intent.Intent
	if json.Unmarshal(m.Data, &in) == nil && in.ICCID == f.iccid && f.rejected.CompareAndSwap(false, true) {
		// A stream the subject is not in: JetStream answers with an error.
		opts = append(opts, jetstream.WithExpectStream("NOT_THIS_STREAM"))
	}
	return f.Publisher.PublishMsgAsync(m, opts...)
}

// TestBatchPubAckErrorFailsItsEventOnly: a batch publishes its events'
// intents together; the one whose PubAck is an error fails — it is neither
// acked nor marked seen, and its redelivery publishes the intent — while the
// others of the batch are acked on their first delivery.
func TestBatchPubAckErrorFailsItsEventOnly(t *testing.T) {
	r := newRig(t, rigOpts{})
	st := r.kvStore(t)
	const events = 6
	for i := range events {
		r.publish(t, fmt.Sprintf(`{"eventType":"PROFILE_STATUS","iccid":"892%d","currentStatus":"ACTIVATED","timestamp":"2024-01-15T14:00:00Z"}`, i), true)
	}
	rej := &rejectedIntents{iccid: "8923"}
	// Stored before the processor starts, so its first batch takes them all.
	in := r.start(t, st, instOpts{workers: 1, batch: 32, wrap: func(p processor.Publisher) processor.Publisher { rej.Publisher = p; return rej }})
	poll.Until(t, "every activation intent", func() bool { return len(r.streamMsgs(t, stream.Notify)) == events })
	poll.Until(t, "all handled", func() bool { return r.quiet(t) })
	if !rej.rejected.Load() {
		t.Fatal("no intent was rejected: the test does not test a PubAck error")
	}
	if got := processedAs(in, "retry"); got != 1 {
		t.Errorf("%d events retried, want exactly the one whose intent was rejected", got)
	}
	if got := processedAs(in, "applied"); got != events {
		t.Errorf("%d events applied, want %d", got, events)
	}
}

// TestAckLast: when the intent cannot be published the event is not acked nor
// marked seen, so its redelivery publishes it (invariant 4). Marking it seen
// first would lose the customer's activation message for good.
func TestAckLast(t *testing.T) {
	r := newRig(t, rigOpts{})
	st := r.kvStore(t)
	fail := &failingIntents{}
	fail.left.Store(2)
	r.start(t, st, instOpts{wrap: func(p processor.Publisher) processor.Publisher { fail.Publisher = p; return fail }})
	body := `{"eventType":"PROFILE_STATUS","iccid":"8901","currentStatus":"ACTIVATED","timestamp":"2024-01-15T14:00:00Z"}`
	r.publish(t, body, true)
	poll.Until(t, "the activation intent", func() bool { return len(r.streamMsgs(t, stream.Notify)) == 1 })
	var in intent.Intent
	if err := json.Unmarshal(r.streamMsgs(t, stream.Notify)[0].Data, &in); err != nil || in.ID != "activation:8901" {
		t.Fatalf("intent %+v (%v)", in, err)
	}
	if fail.left.Load() > 0 {
		t.Errorf("the injected failures were not hit")
	}
	ev, err := event.Decode([]byte(body))
	poll.Until(t, "the seen mark", func() bool {
		seen, _ := st.Seen(context.Background(), dedupe.Key(ev, err, []byte(body)))
		return seen
	})
}

// TestPoisonEventDeadLettered: a malformed event among good ones goes to
// ESIM_DLQ once, with the error, subject and delivery count; the good ones are
// all processed, and an unknown type is parked, not dead-lettered.
func TestPoisonEventDeadLettered(t *testing.T) {
	for _, loop := range loops {
		t.Run(loop.name, func(t *testing.T) { testPoison(t, loop.opts) })
	}
}

// loops are the two consume loops; every guarantee holds for both.
var loops = []struct {
	name string
	opts instOpts
}{{"per-message", instOpts{}}, {"batched", instOpts{workers: 2, batch: 8}}}

func testPoison(t *testing.T, o instOpts) {
	r := newRig(t, rigOpts{})
	st := r.kvStore(t)
	in := r.start(t, st, o)
	r.publish(t, `{"eventType":"PROFILE_STATUS","iccid":"1","currentStatus":"ACTIVATED"}`, true)
	r.publish(t, `{"eventType":"DATA_USAGE","iccid":"1","usedVolume":"lots"}`, true)
	r.publish(t, `{"eventType":"PROFILE_STATUS","iccid":"2","currentStatus":"ACTIVATED"}`, true)
	r.publish(t, `{"eventType":"REFUND","orderNo":"O"}`, true) // unknown: parked, not dead
	r.publish(t, `{"notifyType":"CHECK_HEALTH","content":{}}`, true)
	poll.Until(t, "both good events merged", func() bool {
		_, e1 := st.Profile(context.Background(), "1")
		_, e2 := st.Profile(context.Background(), "2")
		return e1 == nil && e2 == nil
	})
	poll.Until(t, "all handled", func() bool { return r.quiet(t) })
	dls := r.streamMsgs(t, stream.DLQ)
	if len(dls) != 1 {
		t.Fatalf("%d dead letters, want 1", len(dls))
	}
	dl := dls[0]
	if !strings.Contains(dl.Header.Get(stream.HeaderError), "usedVolume") ||
		dl.Header.Get(stream.HeaderSubject) != r.names.EventSubject(event.DataUsage) ||
		dl.Header.Get(stream.HeaderDeliveries) != "1" || dl.Header.Get(stream.HeaderSequence) != "2" {
		t.Errorf("dead letter headers %v", dl.Header)
	}
	p, err := st.Profile(context.Background(), "1")
	if err != nil || p.UsedVolume != 0 {
		t.Errorf("poison event touched state: %+v %v", p, err)
	}
	if _, err := st.Order(context.Background(), "O"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown event made an order: %v", err)
	}

	// Parked events are visible: counted by type, with their sequences.
	var parked struct{ Parked []processor.ParkedType }
	if code := in.call(t, "GET", "/v1/parked", &parked); code != 200 {
		t.Fatalf("GET /v1/parked: %d", code)
	}
	want := map[string]processor.ParkedType{
		"unknown":      {Type: "unknown", InStream: 1, ParkedHere: 1, LastSeqs: []uint64{4}},
		"check_health": {Type: "check_health", InStream: 1, ParkedHere: 1, LastSeqs: []uint64{5}},
	}
	for _, p := range parked.Parked {
		w, ok := want[p.Type]
		if !ok { // operator alerts: none here
			if p.InStream != 0 || p.ParkedHere != 0 {
				t.Errorf("parked %+v, want none", p)
			}
			continue
		}
		if p.InStream != w.InStream || p.ParkedHere != w.ParkedHere || len(p.LastSeqs) != 1 || p.LastSeqs[0] != w.LastSeqs[0] {
			t.Errorf("parked %+v, want %+v", p, w)
		}
	}
}
