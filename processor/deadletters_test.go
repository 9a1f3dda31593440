package processor_test

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"sync/atomic"
	"testing"

	"github.com/esimflow/esimflow/processor"
	"github.com/esimflow/esimflow/processor/merge"
	"github.com/esimflow/esimflow/shared/poll"
	"github.com/esimflow/esimflow/shared/store"
	"github.com/esimflow/esimflow/shared/stream"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// brokenProfile fails every update of one profile while broken is set: a
// transient fault the event cannot get past until someone fixes it.
type brokenProfile struct {
	processor.Store
	iccid  string
	broken atomic.Bool
}

func (b *brokenProfile) UpdateProfile(ctx context.Context, iccid string, fn func(*store.Profile) (bool, error)) (store.Profile, error) {
	if iccid == b.iccid && b.broken.Load() {
		return store.Profile{}, errors.New("injected: profile shard unavailable")
	}
	return b.Store.UpdateProfile(ctx, iccid, fn)
}

var _ merge.State = (*brokenProfile)(nil)

// TestDeadLetterAPI: an event that keeps failing is dead-lettered after
// MaxDeliver (not before), listed and shown through the API, and once the
// fault is fixed a re-drive applies it and deletes the dead letter; a
// re-drive inside the duplicate window is refused, and delete and purge work.
func TestDeadLetterAPI(t *testing.T) {
	for _, tc := range []struct {
		name     string
		external bool
	}{{"embedded nats", false}, {"nats 2.9 external", true}} {
		t.Run(tc.name, func(t *testing.T) { testDeadLetterAPI(t, tc.external) })
	}
}

func testDeadLetterAPI(t *testing.T, external bool) {
	r := newRig(t, rigOpts{maxDeliver: 3, external: external})
	st := &brokenProfile{Store: r.kvStore(t), iccid: "8924"}
	st.broken.Store(true)
	in := r.start(t, st, instOpts{})

	// Published without a Nats-Msg-Id, as if older than the duplicate window.
	r.publish(t, `{"eventType":"PROFILE_STATUS","iccid":"8924","currentStatus":"ACTIVATED","timestamp":"2024-01-15T14:00:00Z"}`, false)
	r.publish(t, `{"eventType":"PROFILE_STATUS","iccid":"8925"}`, true) // malformed: no status
	r.publish(t, `{"eventType":"PROFILE_STATUS","iccid":"8926"}`, true)
	poll.Until(t, "three dead letters", func() bool { return len(r.streamMsgs(t, stream.DLQ)) == 3 })

	var list struct {
		DeadLetters []processor.DeadLetter
		Next        uint64
	}
	if code := in.call(t, "GET", "/v1/dlq?limit=2", &list); code != 200 || len(list.DeadLetters) != 2 || list.Next == 0 {
		t.Fatalf("list page 1: %d %+v", code, list)
	}
	page2 := list
	if code := in.call(t, "GET", "/v1/dlq?after="+strconv.FormatUint(list.Next, 10), &page2); code != 200 || len(page2.DeadLetters) != 1 || page2.Next != 0 {
		t.Fatalf("list page 2: %d %+v", code, page2)
	}
	var x processor.DeadLetter
	for _, d := range append(list.DeadLetters, page2.DeadLetters...) {
		if d.OriginalSeq == 1 {
			x = d
		}
	}
	if x.Source != "events" || x.Deliveries != 3 || x.Error == "" || x.DedupeKey == "" || x.OriginalSubject != r.names.EventSubject("PROFILE_STATUS") {
		t.Fatalf("dead letter of X %+v (dead-lettered on the last delivery, not before)", x)
	}
	var full processor.DeadLetter
	if code := in.call(t, "GET", "/v1/dlq/"+strconv.FormatUint(x.Seq, 10), &full); code != 200 || len(full.Body) == 0 || full.Headers == nil {
		t.Fatalf("show: %d %+v", code, full)
	}

	// Fixed: the re-drive applies the event.
	st.broken.Store(false)
	var res processor.Redriven
	if code := in.call(t, "POST", "/v1/dlq/"+strconv.FormatUint(x.Seq, 10)+"/redrive", &res); code != 200 || res.StreamSeq <= 3 {
		t.Fatalf("redrive: %d %+v", code, res)
	}
	poll.Until(t, "the re-driven event applied", func() bool {
		p, err := st.Profile(context.Background(), "8924")
		return err == nil && p.Status == "ACTIVATED"
	})
	if code := in.call(t, "GET", "/v1/dlq/"+strconv.FormatUint(x.Seq, 10), nil); code != http.StatusNotFound {
		t.Errorf("re-driven dead letter still there: %d", code)
	}
	// Y was published seconds ago with its Nats-Msg-Id: JetStream would drop
	// the copy, so the re-drive is refused and the dead letter kept.
	y := list.DeadLetters[0].Seq
	if list.DeadLetters[0].OriginalSeq == 1 {
		y = list.DeadLetters[1].Seq
	}
	if code := in.call(t, "POST", "/v1/dlq/"+strconv.FormatUint(y, 10)+"/redrive", nil); code != http.StatusConflict {
		t.Errorf("redrive inside the duplicate window: %d, want 409", code)
	}
	if code := in.call(t, "DELETE", "/v1/dlq/"+strconv.FormatUint(y, 10), nil); code != 200 {
		t.Errorf("delete: %d", code)
	}
	if code := in.call(t, "DELETE", "/v1/dlq/"+strconv.FormatUint(y, 10), nil); code != http.StatusNotFound {
		t.Errorf("delete again: %d, want 404", code)
	}
	var purged struct{ Purged uint64 }
	if code := in.call(t, "DELETE", "/v1/dlq?source=events", &purged); code != 200 || purged.Purged != 1 {
		t.Errorf("purge: %d %+v", code, purged)
	}
	if n := len(r.streamMsgs(t, stream.DLQ)); n != 0 {
		t.Errorf("%d dead letters after purge", n)
	}
	if code := in.call(t, "GET", "/v1/dlq?source=bogus", nil); code != http.StatusBadRequest {
		t.Errorf("bad source: %d", code)
	}
}

// TestRedriveIntentInsideDuplicateWindow: an intent's dead letter is
// re-driven at once, even seconds after the original was published (the
// notifier's claims, not the duplicate window, keep it from going out
// twice): issue 16, case 2, re-driving one message is enough.
func TestRedriveIntentInsideDuplicateWindow(t *testing.T) {
	r := newRig(t, rigOpts{})
	in := r.start(t, r.kvStore(t), instOpts{})
	ctx := context.Background()
	subject := r.names.NotifySubject("low_data")
	body := []byte(`{"id":"low_data:8931:b1:100","kind":"low_data","iccid":"8931","threshold":100}`)
	orig := nats.NewMsg(subject)
	orig.Data = body
	ack, err := r.js.PublishMsg(ctx, orig, jetstream.WithMsgID("low_data:8931:b1:100"))
	if err != nil {
		t.Fatal(err)
	}
	// The notifier's dead letter of it, as shared/consume writes one.
	dl := nats.NewMsg(r.names.DLQSubject("notify"))
	dl.Data = body
	dl.Header.Set(stream.HeaderSubject, subject)
	dl.Header.Set(stream.HeaderSequence, strconv.FormatUint(ack.Sequence, 10))
	dl.Header.Set(stream.HeaderError, "deliveries exhausted while waiting")
	dlAck, err := r.js.PublishMsg(ctx, dl)
	if err != nil {
		t.Fatal(err)
	}
	var res processor.Redriven
	if code := in.call(t, "POST", "/v1/dlq/"+strconv.FormatUint(dlAck.Sequence, 10)+"/redrive", &res); code != http.StatusOK || res.Duplicate || res.StreamSeq <= ack.Sequence {
		t.Fatalf("redrive inside the window: %d %+v; want 200 and a new message", code, res)
	}
	msgs := r.streamMsgs(t, stream.Notify)
	if len(msgs) != 2 || string(msgs[1].Data) != string(body) {
		t.Fatalf("ESIM_NOTIFY holds %d messages; want the original and one re-driven copy", len(msgs))
	}
}
