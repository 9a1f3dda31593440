package notifier_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/esimflow/esimflow/shared/intent"
	"github.com/esimflow/esimflow/shared/poll"
	"github.com/esimflow/esimflow/shared/store"
	"github.com/esimflow/esimflow/shared/stream"
	"github.com/nats-io/nats.go"
)

// TestSentOncePerIntent: the same intent delivered many times, to three
// notifier instances at once, is sent once (invariant 5).
func TestSentOncePerIntent(t *testing.T) {
	t.Parallel()
	r := start(t, options{n: 3})
	in := intent.Intent{ID: intent.ActivationID("8901"), Kind: intent.Activation, ICCID: "8901"}
	for i := range 20 {
		r.publish(t, in, fmt.Sprintf("copy-%d", i))
	}
	r.quiet(t)
	if got := r.out.count(in.ID); got != 1 {
		t.Errorf("sent %d times, want 1", got)
	}
	for _, id := range []string{in.ID, in.ID + "/console"} {
		if st, err := r.store.ClaimState(context.Background(), id); err != nil || st != store.ClaimSent {
			t.Errorf("claim %s state %q (%v)", id, st, err)
		}
	}
	log, err := r.store.Notifications(context.Background(), "8901")
	if err != nil || len(log) != 1 || log[0].Status != "sent" || log[0].Channel != "console" || log[0].SentAt.IsZero() {
		t.Errorf("log %+v (%v)", log, err)
	}
}

// TestStaleLowDataSuppressed: an 80 % warning that arrives after the 100 %
// one went out is suppressed and logged as such, not sent.
func TestStaleLowDataSuppressed(t *testing.T) {
	t.Parallel()
	r := start(t, options{})
	full := intent.Intent{ID: intent.LowDataID("8901", "b1", 100), Kind: intent.LowData, ICCID: "8901", Threshold: 100}
	warn := intent.Intent{ID: intent.LowDataID("8901", "b1", 80), Kind: intent.LowData, ICCID: "8901", Threshold: 80, SupersededBy: []string{full.ID}}
	r.publish(t, full, full.ID)
	poll.Until(t, "the 100% message", func() bool { return r.out.count(full.ID) == 1 })
	r.publish(t, warn, warn.ID)
	r.quiet(t)
	if got := r.out.count(warn.ID); got != 0 {
		t.Errorf("stale 80%% warning sent %d times", got)
	}
	st, _ := r.store.ClaimState(context.Background(), warn.ID)
	if st != store.ClaimSuppressed {
		t.Errorf("claim state %q, want suppressed", st)
	}
	log, _ := r.store.Notifications(context.Background(), "8901")
	if len(log) != 2 || log[1].ID != warn.ID || log[1].Status != "suppressed" {
		t.Errorf("log %+v", log)
	}
}

// TestEndedESIMNotTold (issue 14, case 6): an intent published for an eSIM
// whose status is terminal by the time its message is due — a late
// ACTIVATED handled after RELEASED — is suppressed and logged with the
// status, not sent; the processor publishes it whatever order the events
// came in (docs/design.md, "Messages").
func TestEndedESIMNotTold(t *testing.T) {
	t.Parallel()
	r := start(t, options{})
	ctx := context.Background()
	if _, err := r.store.UpdateProfile(ctx, "8961", func(p *store.Profile) (bool, error) {
		p.Status = "RELEASED"
		return true, nil
	}); err != nil {
		t.Fatal(err)
	}
	in := intent.Intent{ID: intent.ActivationID("8961"), Kind: intent.Activation, ICCID: "8961"}
	r.publish(t, in, in.ID)
	poll.Until(t, "the intent decided", func() bool {
		st, err := r.store.ClaimState(ctx, in.ID)
		return err == nil && st.Final()
	})
	r.quiet(t)
	if got := r.out.count(in.ID); got != 0 {
		t.Errorf("activation of a released eSIM sent %d times", got)
	}
	if st, _ := r.store.ClaimState(ctx, in.ID); st != store.ClaimSuppressed {
		t.Errorf("claim state %q, want suppressed", st)
	}
	log, _ := r.store.Notifications(ctx, "8961")
	if len(log) != 1 || log[0].Status != "suppressed" || log[0].Error != "eSIM RELEASED" {
		t.Errorf("log %+v, want one entry suppressed for eSIM RELEASED", log)
	}
}

// TestReplacedBundleNotTold (issue 16): after an outage, the 80 % warning
// of a bundle the customer has topped up since, and the 1-day warning of a
// period renewed since, are suppressed with what replaced them; the
// warning about the new bundle goes out.
func TestReplacedBundleNotTold(t *testing.T) {
	t.Parallel()
	r := start(t, options{})
	ctx := context.Background()
	iccid, sub := "8962", intent.Subscription("8962", "T1", "")
	oldEnd, newEnd := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	if _, err := r.store.UpdateProfile(ctx, iccid, func(p *store.Profile) (bool, error) {
		p.Status, p.Bundle = "ACTIVATED", "3G"
		p.Bundles = []store.Bundle{{ID: "3G", Subscription: "T1"}, {ID: "1G", Subscription: "T1"}}
		p.Periods = []store.Period{{ExpiresAt: newEnd, Subscription: sub, Live: true}, {ExpiresAt: oldEnd, Subscription: sub, Live: true}}
		return true, nil
	}); err != nil {
		t.Fatal(err)
	}
	old := intent.Intent{ID: intent.LowDataID(sub, "1G", 80), Kind: intent.LowData, ICCID: iccid, Subscription: sub, Bundle: "1G", Threshold: 80}
	cur := intent.Intent{ID: intent.LowDataID(sub, "3G", 80), Kind: intent.LowData, ICCID: iccid, Subscription: sub, Bundle: "3G", Threshold: 80}
	validity := intent.Intent{ID: intent.ValidityLowID(sub, intent.Period(oldEnd), 1), Kind: intent.ValidityLow, ICCID: iccid,
		Subscription: sub, ExpiresAt: oldEnd, RemainDays: 1}
	for _, in := range []intent.Intent{old, cur, validity} {
		r.publish(t, in, in.ID)
	}
	r.quiet(t)
	if n := r.out.count(cur.ID); n != 1 {
		t.Errorf("the current bundle's warning sent %d times, want once", n)
	}
	want := map[string]string{old.ID: "superseded by bundle 3G", validity.ID: "superseded by the period ending 2026-03-01T00:00:00Z"}
	for id := range want {
		if n := r.out.count(id); n != 0 {
			t.Errorf("%s sent %d times", id, n)
		}
		if st, _ := r.store.ClaimState(ctx, id); st != store.ClaimSuppressed {
			t.Errorf("%s: claim state %q, want suppressed", id, st)
		}
	}
	log, _ := r.store.Notifications(ctx, iccid)
	for _, n := range log {
		if why, ok := want[n.ID]; ok && (n.Status != "suppressed" || n.Error != why) {
			t.Errorf("%s logged %s %q, want suppressed %q", n.ID, n.Status, n.Error, why)
		}
	}
}

// TestUndecodableIntentDeadLettered: garbage on ESIM_NOTIFY goes to the dead
// letters at once.
func TestUndecodableIntentDeadLettered(t *testing.T) {
	t.Parallel()
	r := start(t, options{})
	m := nats.NewMsg(r.names.NotifySubject("activation"))
	m.Data = []byte("not an intent")
	if _, err := r.js.PublishMsg(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, "a dead letter", func() bool {
		s, err := r.js.Stream(context.Background(), r.names.Stream(stream.DLQ))
		if err != nil {
			return false
		}
		info, err := s.Info(context.Background())
		return err == nil && info.State.Msgs == 1
	})
}

// TestTakeoverLoggedAsRetriedUnknown: an instance that died mid-send leaves
// its claims leased; when the leases run out another instance takes over,
// sends, and logs the retry as an unknown outcome on that channel.
func TestTakeoverLoggedAsRetriedUnknown(t *testing.T) {
	t.Parallel()
	r := start(t, options{})
	in := intent.Intent{ID: intent.ActivationID("8901"), Kind: intent.Activation, ICCID: "8901"}
	ctx := context.Background()
	// The dead instance had claimed the intent and its console send.
	for _, id := range []string{in.ID, in.ID + "/console"} {
		if c, err := r.store.Claim(ctx, id, "dead", 500*time.Millisecond); err != nil || c.Outcome != store.Claimed {
			t.Fatalf("claim %s: %+v, %v", id, c, err)
		}
	}
	r.publish(t, in, in.ID)
	poll.Until(t, "the message", func() bool { return r.out.count(in.ID) == 1 })
	r.quiet(t)
	if got := r.statuses(t, "8901", in.ID); !slices.Equal(got, []string{"retried_unknown/console", "sent/console"}) {
		t.Errorf("log %v", got)
	}
	if got := r.out.count(in.ID); got != 1 {
		t.Errorf("sent %d times by the live instance, want 1", got)
	}
}

// TestNoRetryUnlessLoggedAsUnknown: a takeover's retry is made only once the
// log holds its retried_unknown mark. A store that refuses the mark (its
// Redis primary is failing over) holds the retry back, where it once sent a
// second copy the log could not tell from a double send (chaos, cluster
// mode, seed 303).
func TestNoRetryUnlessLoggedAsUnknown(t *testing.T) {
	t.Parallel()
	in := intent.Intent{ID: intent.ActivationID("8902"), Kind: intent.Activation, ICCID: "8902"}
	var r rig
	marks := &refuseMarks{left: 2}
	r = start(t, options{lease: 300 * time.Millisecond, wrap: func(st store.Store) store.Store {
		marks.Store = st
		marks.sentBefore = func() int { return r.out.count(in.ID) }
		return marks
	}})
	ctx := context.Background()
	for _, id := range []string{in.ID, in.ID + "/console"} {
		if c, err := r.store.Claim(ctx, id, "dead", 300*time.Millisecond); err != nil || c.Outcome != store.Claimed {
			t.Fatalf("claim %s: %+v, %v", id, c, err)
		}
	}
	r.publish(t, in, in.ID)
	poll.Until(t, "the message", func() bool { return r.out.count(in.ID) == 1 })
	r.quiet(t)
	if refused, early := marks.counts(); refused != 2 || early != 0 {
		t.Errorf("marks refused %d (want 2); copies sent before the mark was logged: %d (want 0)", refused, early)
	}
	if got := r.statuses(t, "8902", in.ID); !slices.Equal(got, []string{"retried_unknown/console", "sent/console"}) {
		t.Errorf("log %v", got)
	}
	if got := r.out.count(in.ID); got != 1 {
		t.Errorf("sent %d times, want 1", got)
	}
}

// refuseMarks refuses the first retried_unknown marks it is asked to log.
type refuseMarks struct {
	store.Store
	sentBefore func() int

	mu             sync.Mutex
	left, refused  int
	sentBeforeMark int
}

func (s *refuseMarks) AppendNotification(ctx context.Context, n store.Notification) error {
	if n.Status == store.NotificationRetriedUnknown {
		s.mu.Lock()
		if s.left > 0 {
			s.left--
			s.refused++
			s.mu.Unlock()
			return errors.New("CLUSTERDOWN The cluster is down")
		}
		s.sentBeforeMark += s.sentBefore()
		s.mu.Unlock()
	}
	return s.Store.AppendNotification(ctx, n)
}

func (s *refuseMarks) counts() (refused, sentBeforeMark int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.refused, s.sentBeforeMark
}
