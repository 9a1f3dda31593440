package notifier_test

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/esimflow/esimflow/notifier/channel/whatsapptest"
	"github.com/esimflow/esimflow/shared/intent"
	"github.com/esimflow/esimflow/shared/poll"
	"github.com/esimflow/esimflow/shared/store"
	"github.com/esimflow/esimflow/shared/stream"
)

// TestFallback: a message is tried on the contact's channels in order,
// WhatsApp → SMS → email, moving on after a permanent failure or a timeout;
// exactly one channel delivers it, and the log shows every try. Two
// instances share the work.
func TestFallback(t *testing.T) {
	t.Parallel()
	const (
		waOK       = "+4915100000001"
		notOnWA    = "+4915100000002" // WhatsApp: not a WhatsApp user (131026, permanent)
		waSlow     = "+4915100000003" // WhatsApp: no answer within the send timeout
		bothRefuse = "+4915100000004" // WhatsApp 131026, SMS 400: email
		allRefuse  = "+4915100000005" // WhatsApp 131026, SMS 400, no email: dead letter
		waLimited  = "+4915100000006" // WhatsApp rate limit once (transient): WhatsApp again
	)
	p := newPeers(t, map[string][]int{bothRefuse: {400}, allRefuse: {400, 400, 400, 400}})
	digits := func(phone string) string { return strings.TrimPrefix(phone, "+") }
	notUser := whatsapptest.Reply{Status: 400, Code: 131026}
	p.wa.Script(digits(notOnWA), notUser)
	p.wa.Script(digits(waSlow), whatsapptest.Reply{Delay: 5 * time.Second})
	p.wa.Script(digits(bothRefuse), notUser)
	p.wa.Script(digits(allRefuse), notUser, notUser, notUser, notUser)
	p.wa.Script(digits(waLimited), whatsapptest.Reply{Status: 400, Code: 131056})
	r := start(t, options{n: 2, channels: p.channels(t, "email", "sms", "whatsapp"),
		env: map[string]string{"ESIMFLOW_NOTIFY_SEND_TIMEOUT": "1s"}})
	ctx := context.Background()
	tests := []struct {
		name, phone, email string
		wa, sms, mail      int
		logged             []string
	}{
		{"whatsapp takes it", waOK, "a@example.com", 1, 0, 0, []string{"sent/whatsapp"}},
		{"not on whatsapp: sms", notOnWA, "b@example.com", 0, 1, 0, []string{"failed/whatsapp", "sent/sms"}},
		{"whatsapp times out: sms", waSlow, "c@example.com", 0, 1, 0, []string{"failed/whatsapp", "sent/sms"}},
		{"whatsapp and sms refuse: email", bothRefuse, "d@example.com", 0, 0, 1, []string{"failed/whatsapp", "failed/sms", "sent/email"}},
		{"every channel refuses: dead letter", allRefuse, "", 0, 0, 0, []string{"failed/whatsapp", "failed/sms", "dead_lettered/"}},
		{"whatsapp rate limited: whatsapp again", waLimited, "f@example.com", 1, 0, 0, []string{"failed/whatsapp", "sent/whatsapp"}},
	}
	var ins []intent.Intent
	for i, tt := range tests {
		tx := fmt.Sprintf("tx-fb%d", i)
		body := fmt.Sprintf(`{"phone":%q,"locale":"de","channels":["whatsapp","sms","email"]}`, tt.phone)
		if tt.email != "" {
			body = fmt.Sprintf(`{"phone":%q,"email":%q,"locale":"de","channels":["whatsapp","sms","email"]}`, tt.phone, tt.email)
		} else {
			body = fmt.Sprintf(`{"phone":%q,"locale":"de","channels":["whatsapp","sms"]}`, tt.phone)
		}
		r.putContact(t, tx, body)
		in := activation(fmt.Sprintf("89000000000000071%02d", i), tx)
		if _, err := r.store.UpdateProfile(ctx, in.ICCID, func(pr *store.Profile) (bool, error) {
			pr.Install = &store.Install{ActivationCode: "LPA:1$rsp.example.com$K2-" + tx}
			return true, nil
		}); err != nil {
			t.Fatal(err)
		}
		ins = append(ins, in)
		// Twice, as if re-published past the duplicate window.
		r.publish(t, in, in.ID)
		r.publish(t, in, in.ID+"#again")
	}
	poll.Until(t, "one dead letter", func() bool { return len(r.deadLetters(t)) > 0 })
	r.quiet(t)
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := ins[i]
			sms, _ := p.sms.count(in.ID)
			wa, mail := len(p.wa.Sent(in.ID)), len(mails(p.smtp, in.ID))
			if wa != tt.wa || sms != tt.sms || mail != tt.mail {
				t.Errorf("whatsapp %d, sms %d, email %d; want %d, %d, %d", wa, sms, mail, tt.wa, tt.sms, tt.mail)
			}
			got := r.statuses(t, in.ICCID, in.ID)
			if tt.wa+tt.sms+tt.mail == 0 {
				// Each copy of the intent walks the channels again (a re-drive
				// would too) and is dead-lettered in turn.
				got = slices.Compact(got)
				if len(got) > 3 {
					got = got[:3]
				}
			}
			if !slices.Equal(got, tt.logged) {
				t.Errorf("log %v, want %v", got, tt.logged)
			}
		})
	}
	// WhatsApp got the activation template in German, with the activation
	// code and the iOS install link made from it.
	if m := p.wa.Sent(ins[0].ID); len(m) != 1 || m[0].Template != "esimflow_activation" || m[0].Language != "de" ||
		m[0].Params["activation_code"] != "LPA:1$rsp.example.com$K2-tx-fb0" || !strings.HasPrefix(m[0].Params["install_url"], "https://esimsetup.apple.com/") {
		t.Errorf("whatsapp message %+v", m)
	}
	// The timed-out try says it may have delivered.
	log, _ := r.store.Notifications(ctx, ins[2].ICCID)
	if len(log) == 0 || !strings.Contains(log[0].Error, "may have been delivered") {
		t.Errorf("timeout entry %+v", log)
	}
	if dl := r.deadLetters(t); len(dl) == 0 || dl[0].intent.ID != ins[4].ID || !strings.Contains(dl[0].err, "131026") || !strings.Contains(dl[0].err, "400") {
		t.Errorf("dead letters %+v", dl)
	}
}

// clock is a time tests set; it counts how often the notifier read it.
type clock struct {
	mu    sync.Mutex
	now   time.Time
	reads int
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.reads++
	return c.now
}

// set moves the clock and waits until the notifier has read it n times
// (looked at its held messages again).
func (c *clock) set(t *testing.T, at time.Time, n int) {
	t.Helper()
	c.mu.Lock()
	c.now, c.reads = at, 0
	c.mu.Unlock()
	poll.Until(t, fmt.Sprintf("%d looks at %v", n, at), func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.reads >= n
	})
}

// heldUntil returns the release time of intent id's latest held entry.
func heldUntil(t *testing.T, r rig, iccid, id string) time.Time {
	t.Helper()
	log, err := r.store.Notifications(context.Background(), iccid)
	if err != nil {
		t.Fatal(err)
	}
	for i := len(log) - 1; i >= 0; i-- {
		if log[i].ID == id && log[i].Status == store.NotificationHeld {
			return log[i].ReleaseAt
		}
	}
	return time.Time{}
}

func lowData(iccid, tx string, threshold int) intent.Intent {
	in := intent.Intent{ID: intent.LowDataID(iccid, "b1", threshold), Kind: intent.LowData, ICCID: iccid, TransactionID: tx,
		Threshold: threshold, UsedVolume: int64(threshold) << 24, TotalVolume: 100 << 24}
	if threshold < 100 {
		in.SupersededBy = []string{intent.LowDataID(iccid, "b1", 100)}
	} else {
		in.After = []string{intent.LowDataID(iccid, "b1", 80)}
	}
	return in
}

// TestQuietHours: one event's low-data warning for a traveller in Tokyo and
// one in Los Angeles comes at night for both (14:00 UTC: 23:00 in Tokyo,
// 06:00 in Los Angeles). Each is held, listed with its release time, and
// goes out at 08:00 on its traveller's clock — Los Angeles first, at 16:00
// UTC, Tokyo at 23:00 UTC — once. The activation, critical, goes at once. A
// hold outlasts the deliveries of its message (4 here): it is re-published
// with a fresh budget rather than dead-lettered.
func TestQuietHours(t *testing.T) {
	t.Parallel()
	p := newPeers(t, nil)
	c := &clock{now: time.Date(2026, 12, 1, 14, 0, 0, 0, time.UTC)}
	r := start(t, options{channels: p.channels(t, "sms"), clock: c.Now, recheck: 100 * time.Millisecond,
		env: map[string]string{"ESIMFLOW_QUIET_HOURS": "22:00-08:00", "ESIMFLOW_MAX_DELIVER": "4"}})
	r.putContact(t, "tx-tokyo", `{"phone":"+819012345678","timeZone":"Asia/Tokyo","locale":"en"}`)
	r.putContact(t, "tx-la", `{"phone":"+13105550100","timeZone":"America/Los_Angeles"}`)
	tokyo, la := lowData("8900000000000000801", "tx-tokyo", 80), lowData("8900000000000000802", "tx-la", 80)
	act := activation("8900000000000000801", "tx-tokyo")
	for _, in := range []intent.Intent{tokyo, la, act} {
		r.publish(t, in, in.ID)
	}
	poll.Until(t, "the activation, at once", func() bool { n, _ := p.sms.count(act.ID); return n == 1 })
	tokyoAt, laAt := time.Date(2026, 12, 1, 23, 0, 0, 0, time.UTC), time.Date(2026, 12, 1, 16, 0, 0, 0, time.UTC)
	poll.Until(t, "both held until 08:00 local", func() bool {
		return heldUntil(t, r, tokyo.ICCID, tokyo.ID).Equal(tokyoAt) && heldUntil(t, r, la.ICCID, la.ID).Equal(laAt)
	})
	// The state API lists them open, held, with their release time.
	_, body := call(t, "GET", r.api.URL+"/v1/notifications/open", "")
	held := map[string]string{}
	for _, n := range body["notifications"].([]any) {
		if n := n.(map[string]any); n["status"] == "held" {
			held[n["id"].(string)] = fmt.Sprint(n["releaseAt"])
		}
	}
	if held[tokyo.ID] != "2026-12-01T23:00:00Z" || held[la.ID] != "2026-12-01T16:00:00Z" {
		t.Errorf("open list: held %v", held)
	}
	sent := func(in intent.Intent) int { n, _ := p.sms.count(in.ID); return n }

	c.set(t, time.Date(2026, 12, 1, 15, 59, 0, 0, time.UTC), 10) // 07:59 in Los Angeles
	if sent(la) != 0 || sent(tokyo) != 0 {
		t.Fatalf("sent before 08:00: la %d, tokyo %d", sent(la), sent(tokyo))
	}
	c.set(t, laAt, 1)
	poll.Until(t, "Los Angeles at 08:00", func() bool { return sent(la) == 1 })
	c.set(t, time.Date(2026, 12, 1, 22, 59, 0, 0, time.UTC), 10) // 07:59 in Tokyo
	if sent(tokyo) != 0 {
		t.Fatal("Tokyo sent before 08:00")
	}
	c.set(t, tokyoAt, 1)
	poll.Until(t, "Tokyo at 08:00", func() bool { return sent(tokyo) == 1 })
	r.quiet(t)
	if sent(la) != 1 || sent(tokyo) != 1 || sent(act) != 1 {
		t.Errorf("sent la %d, tokyo %d, activation %d; want one each", sent(la), sent(tokyo), sent(act))
	}
	for _, in := range []intent.Intent{tokyo, la} {
		if got := slices.Compact(r.statuses(t, in.ICCID, in.ID)); !slices.Equal(got, []string{"held/", "sent/sms"}) {
			t.Errorf("%s: log %v", in.ID, got)
		}
	}
	if dl := r.deadLetters(t); len(dl) != 0 {
		t.Errorf("dead letters %+v", dl)
	}
	// The holds outlasted 4 deliveries: re-published, not dead-lettered.
	s, err := r.js.Stream(context.Background(), r.names.Stream(stream.Notify))
	if err != nil {
		t.Fatal(err)
	}
	if info, err := s.Info(context.Background()); err != nil || info.State.Msgs <= 3 {
		t.Errorf("ESIM_NOTIFY holds %v messages (%v); want the held ones re-published", info.State.Msgs, err)
	}
}

// TestQuietHoursSuperseded: an 80 % warning held for the night does not hold
// up the 100 % one, which is critical and goes at once; the 80 % is then
// not sent, neither at once nor at 08:00 (superseded).
func TestQuietHoursSuperseded(t *testing.T) {
	t.Parallel()
	p := newPeers(t, nil)
	c := &clock{now: time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)} // 04:00 in Los Angeles
	r := start(t, options{channels: p.channels(t, "sms"), clock: c.Now, recheck: 100 * time.Millisecond,
		env: map[string]string{"ESIMFLOW_QUIET_HOURS": "22:00-08:00", "ESIMFLOW_QUIET_HOURS_TIME_ZONE": "America/Los_Angeles"}})
	r.putContact(t, "tx1", `{"phone":"+13105550101"}`)
	warn, full := lowData("8900000000000000811", "tx1", 80), lowData("8900000000000000811", "tx1", 100)
	r.publish(t, warn, warn.ID)
	poll.Until(t, "80 % held", func() bool { return !heldUntil(t, r, warn.ICCID, warn.ID).IsZero() })
	r.publish(t, full, full.ID)
	poll.Until(t, "100 % at once", func() bool { n, _ := p.sms.count(full.ID); return n == 1 })
	c.set(t, time.Date(2026, 12, 1, 16, 0, 0, 0, time.UTC), 0)
	poll.Until(t, "80 % suppressed", func() bool {
		st, _ := r.store.ClaimState(context.Background(), warn.ID)
		return st == store.ClaimSuppressed
	})
	r.quiet(t)
	if n, _ := p.sms.count(warn.ID); n != 0 {
		t.Errorf("80 %% sent %d times", n)
	}
	if got := r.statuses(t, warn.ICCID, warn.ID); !slices.Equal(got, []string{"held/", "suppressed/"}) {
		t.Errorf("80 %% log %v", got)
	}
}

// TestOptOut: a customer who opted out of low-data warnings gets none (the
// intent is suppressed, logged with the reason), but still gets the
// activation, which is critical, although the opt-out names it too.
func TestOptOut(t *testing.T) {
	t.Parallel()
	p := newPeers(t, nil)
	r := start(t, options{channels: p.channels(t, "email")})
	r.putContact(t, "tx1", `{"email":"o@example.com","optOut":["low_data","activation"]}`)
	warn, act := lowData("8900000000000000821", "tx1", 80), activation("8900000000000000821", "tx1")
	r.publish(t, warn, warn.ID)
	r.publish(t, act, act.ID)
	poll.Until(t, "the activation", func() bool { return len(mails(p.smtp, act.ID)) == 1 })
	poll.Until(t, "the warning suppressed", func() bool {
		st, _ := r.store.ClaimState(context.Background(), warn.ID)
		return st == store.ClaimSuppressed
	})
	r.quiet(t)
	if n := len(mails(p.smtp, warn.ID)); n != 0 {
		t.Errorf("%d low-data mails", n)
	}
	log, _ := r.store.Notifications(context.Background(), warn.ICCID)
	if i := slices.IndexFunc(log, func(n store.Notification) bool { return n.ID == warn.ID }); i < 0 || !strings.Contains(log[i].Error, "opted out of low_data") {
		t.Errorf("log %+v", log)
	}
}

// TestWhatTheTravellerNeeds: the activation email carries the LPA code, the
// iOS install link and the QR code as an inline image; the low-data one
// the reseller's top-up link; the preview shows them.
func TestWhatTheTravellerNeeds(t *testing.T) {
	t.Parallel()
	p := newPeers(t, nil)
	r := start(t, options{channels: p.channels(t, "email"),
		env: map[string]string{"ESIMFLOW_TOPUP_URL": "https://shop.example/topup?iccid={iccid}&tx={transactionId}"}})
	const code = "LPA:1$rsp.example.com$K2-1A2B3C-4D5E6F"
	act, warn := activation("8900000000000000831", "tx1"), lowData("8900000000000000831", "tx1", 80)
	if _, err := r.store.UpdateProfile(context.Background(), act.ICCID, func(pr *store.Profile) (bool, error) {
		pr.Install = &store.Install{ActivationCode: code}
		return true, nil
	}); err != nil {
		t.Fatal(err)
	}
	r.putContact(t, "tx1", `{"name":"Ana","email":"t@example.com","locale":"es"}`)
	r.publish(t, act, act.ID)
	r.publish(t, warn, warn.ID)
	poll.Until(t, "both mails", func() bool { return len(mails(p.smtp, act.ID)) == 1 && len(mails(p.smtp, warn.ID)) == 1 })
	r.quiet(t)
	m := mails(p.smtp, act.ID)[0]
	qr, ok := m.Inline["qr.esimflow"]
	if !ok || qr.ContentType != "image/png" || !bytes.HasPrefix(qr.Data, []byte("\x89PNG")) {
		t.Errorf("inline QR %v %q", ok, qr.ContentType)
	}
	ios := "https://esimsetup.apple.com/esim_qrcode_provisioning?carddata=LPA%3A1%24rsp.example.com%24K2-1A2B3C-4D5E6F"
	if !strings.Contains(m.Text, code) || !strings.Contains(m.Text, ios) || !strings.Contains(m.HTML, `src="cid:qr.esimflow"`) ||
		!strings.Contains(m.HTML, "Instalar en iPhone") {
		t.Errorf("activation mail:\n%s\n%s", m.Text, m.HTML)
	}
	if w := mails(p.smtp, warn.ID)[0]; !strings.Contains(w.Text, "https://shop.example/topup?iccid=8900000000000000831&tx=tx1") {
		t.Errorf("low-data mail:\n%s", w.Text)
	}
	_, body := call(t, "GET", r.api.URL+"/v1/notifications/"+act.ID+"/preview?iccid="+act.ICCID, "")
	if text, _ := body["text"].(string); !strings.Contains(text, code) {
		t.Errorf("preview %v", body)
	}
}
