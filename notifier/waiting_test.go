package notifier_test

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/esimflow/esimflow/notifier"
	"github.com/esimflow/esimflow/notifier/channel"
	"github.com/esimflow/esimflow/notifier/channel/smtptest"
	"github.com/esimflow/esimflow/shared/admin"
	"github.com/esimflow/esimflow/shared/config"
	"github.com/esimflow/esimflow/shared/event"
	"github.com/esimflow/esimflow/shared/intent"
	"github.com/esimflow/esimflow/shared/natstest"
	"github.com/esimflow/esimflow/shared/poll"
	"github.com/esimflow/esimflow/shared/store"
	"github.com/esimflow/esimflow/shared/store/kvstore"
	"github.com/esimflow/esimflow/shared/stream"
	"github.com/esimflow/esimflow/shared/testns"
	"github.com/nats-io/nats.go/jetstream"
)

// lowData returns the 80 % and 100 % warnings of one bundle, ordered as
// the processor orders them.
func lowDataPair(iccid, tx string) (w80, w100 intent.Intent) {
	id80, id100 := intent.LowDataID(iccid, "b1", 80), intent.LowDataID(iccid, "b1", 100)
	w80 = intent.Intent{ID: id80, Kind: intent.LowData, ICCID: iccid, TransactionID: tx, Threshold: 80, Bundle: "b1", SupersededBy: []string{id100}}
	w100 = intent.Intent{ID: id100, Kind: intent.LowData, ICCID: iccid, TransactionID: tx, Threshold: 100, Bundle: "b1", After: []string{id80}}
	return w80, w100
}

// TestDeadLetteredLowerWarningReleasesTheHigher is issue 16, case 2: with a
// short contact wait the 80 % warning dead-letters for lack of a contact,
// then the 100 % (it waited for the 80 % on main until its deliveries ran
// out); the contact is registered; re-driving the 100 % alone sends it (the 80 %,
// dead-lettered, is no longer waited for), and re-driving the 80 % after it
// suppresses it.
func TestDeadLetteredLowerWarningReleasesTheHigher(t *testing.T) {
	t.Parallel()
	p := newPeers(t, nil)
	r := start(t, options{channels: p.channels(t, "email"), env: map[string]string{"ESIMFLOW_CONTACT_WAIT": "2s"}})
	w80, w100 := lowDataPair("8900000000000001601", "tx-c2")
	r.publish(t, w80, w80.ID)
	poll.Until(t, "the 80 % dead-lettered", func() bool { return len(r.deadLetters(t)) == 1 })
	// The claim is marked right after the dead letter is written.
	poll.Until(t, "the 80 % claim marked dead_lettered", func() bool {
		st, _ := r.store.ClaimState(context.Background(), w80.ID)
		return st == store.ClaimDeadLettered
	})
	r.publish(t, w100, w100.ID)
	poll.Until(t, "the 100 % dead-lettered", func() bool { return len(r.deadLetters(t)) == 2 })
	poll.Until(t, "the 100 % claim marked dead_lettered", func() bool {
		st, _ := r.store.ClaimState(context.Background(), w100.ID)
		return st == store.ClaimDeadLettered
	})

	// The contact comes after the messages' park expired (the contact wait
	// and parkMargin): it wakes nothing, and the re-drives below are what
	// sends. Within the margin it would wake both, in order
	// (TestDeadLetterWokenByTheContact).
	if err := r.store.Unpark(context.Background(), intent.WakeTx("tx-c2"), w80.ID, w100.ID); err != nil {
		t.Fatal(err)
	}
	r.putContact(t, "tx-c2", `{"email":"c2@example.com"}`)
	// A re-drive is a new copy of the body (the processor's re-drive
	// publishes it under a new Nats-Msg-Id).
	r.publish(t, w100, w100.ID+"/redrive/2")
	poll.Until(t, "the 100 % mail", func() bool { return len(mails(p.smtp, w100.ID)) == 1 })
	r.publish(t, w80, w80.ID+"/redrive/1")
	r.quiet(t)
	if n80, n100 := len(mails(p.smtp, w80.ID)), len(mails(p.smtp, w100.ID)); n80 != 0 || n100 != 1 {
		t.Errorf("mails: 80 %% %d, 100 %% %d; want 0 and 1", n80, n100)
	}
	if got := r.statuses(t, w80.ICCID, w80.ID); got[len(got)-1] != "suppressed/" {
		t.Errorf("80 %% log %v; want it to end suppressed", got)
	}
	if got := r.statuses(t, w100.ICCID, w100.ID); !slices.Contains(got, "sent/email") {
		t.Errorf("100 %% log %v; want sent", got)
	}
	if n := len(r.deadLetters(t)); n != 2 {
		t.Errorf("%d dead letters; want the 2 from before", n)
	}
}

// TestDeadLetterWokenByTheContact: a message that dead-lettered waiting for
// its contact stays parked under the transactionId until the park expires
// (parkMargin after the contact wait), so a contact registered within that
// margin still sends it; the dead letter's re-drive then finds it done.
func TestDeadLetterWokenByTheContact(t *testing.T) {
	t.Parallel()
	p := newPeers(t, nil)
	r := start(t, options{channels: p.channels(t, "email"), env: map[string]string{"ESIMFLOW_CONTACT_WAIT": "2s"}})
	in := activation("8900000000000001631", "tx-dl")
	r.publish(t, in, in.ID)
	poll.Until(t, "the claim marked dead_lettered", func() bool {
		st, _ := r.store.ClaimState(context.Background(), in.ID)
		return st == store.ClaimDeadLettered
	})
	if !parkedUnder(t, r, intent.WakeTx("tx-dl"), in.ID) {
		t.Fatal("the dead-lettered message is no longer parked under its transactionId")
	}
	r.putContact(t, "tx-dl", `{"email":"dl@example.com"}`)
	poll.Until(t, "the mail", func() bool { return len(mails(p.smtp, in.ID)) == 1 })
	r.publish(t, in, in.ID+"/redrive/1")
	r.quiet(t)
	if n := len(mails(p.smtp, in.ID)); n != 1 {
		t.Errorf("%d mails; want 1 (the re-drive finds it sent)", n)
	}
	if got := r.statuses(t, in.ICCID, in.ID); !slices.Equal(got, []string{"waiting/", "dead_lettered/", "sent/email"}) {
		t.Errorf("log %v; want waiting, dead_lettered, sent", got)
	}
}

// parkedUnder reports whether id waits parked under key.
func parkedUnder(t *testing.T, r rig, key, id string) bool {
	t.Helper()
	m, err := r.store.Parked(context.Background(), key)
	if err != nil {
		t.Fatal(err)
	}
	_, ok := m[id]
	return ok
}

// slowRetries makes a waiting message's next retry come minutes later: with
// three deliveries, the 15-minute contact wait is spread as 225 s, then the
// rest. Whatever goes out within the test's poll budget went on a wake-up.
var slowRetries = map[string]string{"ESIMFLOW_CONTACT_WAIT": "15m", "ESIMFLOW_MAX_DELIVER": "3"}

// TestWokenByTheContact is issue 16, case 1 (the contact comes after the
// event): the message waiting for its contact goes out when the contact is
// registered, not on its next retry minutes later.
func TestWokenByTheContact(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		redis bool
	}{{"nats kv", false}, {"redis", true}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := newPeers(t, nil)
			r := start(t, options{channels: p.channels(t, "email"), env: slowRetries, redis: tc.redis})
			in := activation("8900000000000001611", "tx-c1")
			r.publish(t, in, in.ID)
			poll.Until(t, "the message parked under its transactionId", func() bool { return parkedUnder(t, r, intent.WakeTx("tx-c1"), in.ID) })
			r.putContact(t, "tx-c1", `{"email":"c1@example.com"}`)
			poll.Until(t, "the mail", func() bool { return len(mails(p.smtp, in.ID)) == 1 })
			// The original stays in the stream until its retry, minutes
			// later, acks it as done; the log says what happened.
			poll.Until(t, "the log", func() bool {
				return slices.Equal(r.statuses(t, in.ICCID, in.ID), []string{"waiting/", "sent/email"})
			})
		})
	}
}

// TestWokenByTheOrderLink is issue 16, case 1 (the order link comes after
// the event): a message whose contact is reachable only through the
// iccid's order goes out when the processor announces the link.
func TestWokenByTheOrderLink(t *testing.T) {
	t.Parallel()
	p := newPeers(t, nil)
	r := start(t, options{channels: p.channels(t, "email"), env: slowRetries})
	r.putContact(t, "tx-link", `{"email":"link@example.com"}`)
	in := activation("8900000000000001621", "") // a profile event names no transactionId
	r.publish(t, in, in.ID)
	poll.Until(t, "the message parked under its iccid", func() bool { return parkedUnder(t, r, intent.WakeICCID(in.ICCID), in.ID) })
	// What the processor does for an ORDER_STATUS: store the link, announce it.
	if _, err := r.store.UpdateProfile(context.Background(), in.ICCID, func(pr *store.Profile) (bool, error) {
		pr.OrderNo, pr.TransactionID = "ORD-LINK", "tx-link"
		return true, nil
	}); err != nil {
		t.Fatal(err)
	}
	if err := r.nc.Publish(r.names.WakeSubject(), intent.EncodeWake([]string{intent.WakeTx("tx-link"), intent.WakeICCID(in.ICCID)})); err != nil {
		t.Fatal(err)
	}
	poll.Until(t, "the mail", func() bool { return len(mails(p.smtp, in.ID)) == 1 })
}

// TestWokenWarningsGoOutAsOne is issue 16, case 1 (a 100 % warning whose
// contact came late went out at 901 s) and the after-an-outage rule: both
// warnings wait for the contact; once it is registered the 100 % goes out at
// once and the 80 % is suppressed, not sent after it.
func TestWokenWarningsGoOutAsOne(t *testing.T) {
	t.Parallel()
	p := newPeers(t, nil)
	r := start(t, options{channels: p.channels(t, "email"), env: slowRetries})
	w80, w100 := lowDataPair("8900000000000001631", "tx-c1w")
	r.publish(t, w80, w80.ID)
	r.publish(t, w100, w100.ID)
	// The 100 % waits for the contact, or for the 80 % that waits for it;
	// the 80 % waits for the contact, or is suppressed already.
	poll.Until(t, "both warnings parked or done", func() bool {
		st80, _ := r.store.ClaimState(context.Background(), w80.ID)
		return (parkedUnder(t, r, intent.WakeTx("tx-c1w"), w80.ID) || st80 == store.ClaimSuppressed) &&
			(parkedUnder(t, r, intent.WakeTx("tx-c1w"), w100.ID) || parkedUnder(t, r, intent.WakeIntent(w80.ID), w100.ID))
	})
	r.putContact(t, "tx-c1w", `{"email":"c1w@example.com"}`)
	poll.Until(t, "the 100 % mail", func() bool { return len(mails(p.smtp, w100.ID)) == 1 })
	poll.Until(t, "the 80 % settled", func() bool {
		st, _ := r.store.ClaimState(context.Background(), w80.ID)
		return st.Final()
	})
	if n80, n100 := len(mails(p.smtp, w80.ID)), len(mails(p.smtp, w100.ID)); n80 != 0 || n100 != 1 {
		t.Errorf("mails: 80 %% %d, 100 %% %d; want 0 and 1", n80, n100)
	}
	if st, _ := r.store.ClaimState(context.Background(), w80.ID); st != store.ClaimSuppressed {
		t.Errorf("80 %% claim %q; want suppressed", st)
	}
}

// TestValidityWarningsSupersede: the validity warnings are ordered like the
// low-data ones (issue 16, after an outage one message): with the one-day
// warning out, the three-day one of the same period is suppressed, not sent
// after it.
func TestValidityWarningsSupersede(t *testing.T) {
	t.Parallel()
	r := start(t, options{})
	rules := intent.Rules{ValidityLowDays: intent.DefaultValidityLowDays}
	exp := time.Now().Add(72 * time.Hour)
	var one, three intent.Intent
	for _, days := range []int64{1, 3} {
		ev := event.Event{Type: event.ValidityUsage, ICCID: "8900000000000001641", RemainDays: days, ExpiredTime: exp}
		got := intent.For(ev, time.Now(), intent.Landing{Subscription: "8900000000000001641"}, rules)
		if len(got) != 1 {
			t.Fatalf("%d days: intents %+v", days, got)
		}
		*map[int64]*intent.Intent{1: &one, 3: &three}[days] = got[0]
	}
	r.publish(t, one, one.ID)
	poll.Until(t, "the one-day warning", func() bool { return r.out.count(one.ID) == 1 })
	r.publish(t, three, three.ID)
	r.quiet(t)
	if n := r.out.count(three.ID); n != 0 {
		t.Errorf("the three-day warning went out %d times after the one-day one", n)
	}
	if st, _ := r.store.ClaimState(context.Background(), three.ID); st != store.ClaimSuppressed {
		t.Errorf("three-day claim %q; want suppressed", st)
	}
}

// TestCleartextAuthStopsTheNotifier is issue 16, case 3 at the service: an
// SMTP URL with credentials for a server beyond loopback that offers AUTH
// PLAIN without TLS (Mailpit with auth on another host) stops the notifier
// at start-up with the reason, instead of failing every send until the dead
// letters; no password is sent.
func TestCleartextAuthStopsTheNotifier(t *testing.T) {
	t.Parallel()
	srv := smtptest.Start(t, smtptest.Options{User: "mailer", Password: "s3cret"})
	_, port, _ := net.SplitHostPort(srv.Addr)
	var d net.Dialer
	e, err := channel.NewEmail(channel.EmailOptions{URL: "smtp+insecure://mailer:s3cret@mailpit.example.net:" + port,
		From: "care@shop.example", Timeout: 5 * time.Second,
		Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, srv.Addr)
		}})
	if err != nil {
		t.Fatal(err)
	}
	ns := natstest.StartEmbedded(t)
	nc := ns.Connect(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	names := testns.New(t)
	cfg, err := config.Load(func(k string) string { return map[string]string{"ESIMFLOW_NAMESPACE": names}[k] })
	if err != nil {
		t.Fatal(err)
	}
	_, cons, err := stream.Ensure(context.Background(), js, stream.NewNames(names), stream.Limits{Replicas: 1, EventsMaxBytes: -1, MaxDeliver: cfg.MaxDeliver})
	if err != nil {
		t.Fatal(err)
	}
	st, err := kvstore.New(context.Background(), js, kvstore.Options{Namespace: names, SeenTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	adm := admin.New("")
	s, err := notifier.New(cfg.Notifier, notifier.Deps{Consumer: cons, Publisher: js, Store: st, Admin: adm,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Channels: []notifier.Channel{channel.Limit(e, 10)}, Wake: nc})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- s.Run(context.Background()) }()
	select {
	case err = <-done:
	case <-time.After(time.Minute):
		t.Fatal("the notifier did not stop")
	}
	if !errors.Is(err, channel.ErrCleartextAuth) || !strings.Contains(err.Error(), "email") {
		t.Errorf("Run = %v; want the clear-text refusal, naming the email channel", err)
	}
	if len(srv.Mail()) != 0 {
		t.Error("mail went out")
	}
	// Readiness says the same.
	w := httptest.NewRecorder()
	adm.Handler().ServeHTTP(w, httptest.NewRequest("GET", "/readyz?verbose=1", nil))
	if w.Code != 503 {
		t.Errorf("/readyz %d %s; want 503", w.Code, w.Body)
	}
}
