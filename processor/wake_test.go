package processor_test

import (
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/esimflow/esimflow/shared/intent"
	"github.com/esimflow/esimflow/shared/poll"
	"github.com/nats-io/nats.go"
)

// TestOrderLinkAnnounced: once an ORDER_STATUS is merged, the processor
// announces its transactionId and iccids on the wake-up subject, so that
// the notifier looks at once at the messages waiting for that link (issue
// 16, case 1), in both the one-at-a-time and the batched path.
func TestOrderLinkAnnounced(t *testing.T) {
	for _, batch := range []int{0, 16} {
		t.Run(map[int]string{0: "one at a time", 16: "batched"}[batch], func(t *testing.T) {
			r := newRig(t, rigOpts{})
			heard := make(chan []string, 16)
			sub, err := r.srv.Connect(t).Subscribe(r.names.WakeSubject(), func(m *nats.Msg) {
				keys, err := intent.DecodeWake(m.Data)
				if err != nil {
					t.Error(err)
				}
				heard <- keys
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = sub.Unsubscribe() })
			r.start(t, r.kvStore(t), instOpts{batch: batch})
			r.publish(t, `{"eventType":"ORDER_STATUS","orderNo":"ORD-W1","transactionId":"tx-w1","status":"GOT_RESOURCE",`+
				`"timestamp":"2024-01-15T12:30:45Z","profiles":[{"iccid":"8901234567890161001"},{"iccid":"8901234567890161002"}]}`, true)
			want := []string{intent.WakeTx("tx-w1"), intent.WakeICCID("8901234567890161001"), intent.WakeICCID("8901234567890161002")}
			var got []string
			poll.Until(t, "the link announced", func() bool {
				select {
				case got = <-heard:
				default:
				}
				return got != nil
			})
			if !slices.Equal(got, want) {
				t.Errorf("announced %q; want %q", got, want)
			}
		})
	}
}

// TestBatchAnnouncesOnce: a batch announces the links of all its events in
// one wake-up (the notifier reads one message per batch, not per event),
// and no link is left out.
func TestBatchAnnouncesOnce(t *testing.T) {
	const events = 20
	r := newRig(t, rigOpts{})
	var (
		mu       sync.Mutex
		messages int
		heard    = map[string]bool{}
	)
	sub, err := r.srv.Connect(t).Subscribe(r.names.WakeSubject(), func(m *nats.Msg) {
		keys, err := intent.DecodeWake(m.Data)
		if err != nil {
			t.Error(err)
		}
		mu.Lock()
		defer mu.Unlock()
		messages++
		for _, k := range keys {
			heard[k] = true
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	var want []string
	for i := range events {
		tx, iccid := fmt.Sprintf("tx-b%d", i), fmt.Sprintf("89012345678901620%02d", i)
		r.publish(t, fmt.Sprintf(`{"eventType":"ORDER_STATUS","orderNo":"ORD-B%d","transactionId":"%s","status":"GOT_RESOURCE",`+
			`"timestamp":"2024-01-15T12:30:45Z","profiles":[{"iccid":"%s"}]}`, i, tx, iccid), true)
		want = append(want, intent.WakeTx(tx), intent.WakeICCID(iccid))
	}
	// One worker: while it handles its first batch, the rest of the backlog
	// gathers for the next.
	r.start(t, r.kvStore(t), instOpts{workers: 1, batch: 32})
	poll.Until(t, "every link announced", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(heard) == len(want)
	})
	mu.Lock()
	defer mu.Unlock()
	for _, k := range want {
		if !heard[k] {
			t.Errorf("link %s not announced", k)
		}
	}
	if messages > events/2 {
		t.Errorf("%d wake-up messages for %d events in batches; want about one per batch", messages, events)
	}
}
