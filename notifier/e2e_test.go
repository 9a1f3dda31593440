package notifier_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/esimflow/esimflow/notifier/channel/smtptest"
	"github.com/esimflow/esimflow/shared/intent"
	"github.com/esimflow/esimflow/shared/poll"
	"github.com/esimflow/esimflow/shared/store"
)

// TestEndToEnd runs three notifier instances against real peers — an SMTP
// server, an SMS API that fails some requests transiently, a webhook
// receiver — with every intent published several times. Every expected
// message arrives exactly once, on the first of its channels that takes
// it; the one the SMS API refuses with a 400, and that has no channel to
// fall back on, lands in the dead letters; a contact registered late
// still gets its message. It runs on both stores.
func TestEndToEnd(t *testing.T) {
	t.Parallel()
	for _, backend := range []string{"kv", "redis"} {
		t.Run(backend, func(t *testing.T) {
			t.Parallel()
			endToEnd(t, backend == "redis")
		})
	}
}

func endToEnd(t *testing.T, redis bool) {
	const (
		transient = "+35191000010" // 500, 429, 503, then accepted
		refused   = "+35191000099" // 400, always
	)
	p := newPeers(t, map[string][]int{
		transient + "1": {500}, transient + "2": {429, 500}, transient + "3": {503, 503, 429}, refused: slices.Repeat([]int{400}, 100),
	})
	r := start(t, options{n: 3, redis: redis, channels: p.channels(t, "email", "sms", "webhook"),
		env: map[string]string{"ESIMFLOW_CONTACT_WAIT": "2m"}})
	ctx := context.Background()

	type want struct {
		in                  intent.Intent
		email, sms, webhook int
	}
	var wants []want
	iccid := func(i int) string { return fmt.Sprintf("89000000000000%05d", i) }
	add := func(i int, contact string, email, sms, webhook int) intent.Intent {
		tx := fmt.Sprintf("tx%d", i)
		if contact != "" {
			r.putContact(t, tx, contact)
		}
		in := activation(iccid(i), tx)
		wants = append(wants, want{in, email, sms, webhook})
		return in
	}
	for i := range 12 {
		locale := []string{"en", "de", "es"}[i%3]
		add(i, fmt.Sprintf(`{"name":"C%d","email":"c%d@example.com","locale":%q}`, i, i, locale), 1, 0, 0)
	}
	for i := 1; i <= 3; i++ {
		add(20+i, fmt.Sprintf(`{"phone":"%s%d"}`, transient, i), 0, 1, 0)
	}
	add(30, `{"phone":"+351910000300"}`, 0, 1, 0)
	add(31, `{"name":"W","channels":["webhook"]}`, 0, 0, 1)
	// SMS refuses this one: email takes it, and the webhook is not tried.
	add(32, `{"email":"m@example.com","phone":"`+refused+`","channels":["sms","email","webhook"]}`, 1, 0, 0)
	dead := add(40, `{"phone":"`+refused+`","channels":["sms"]}`, 0, 0, 0)
	late := add(50, "", 1, 0, 0)

	// Low data at 80 and 100 % for one customer, published together.
	r.putContact(t, "tx60", `{"email":"ld@example.com"}`)
	full := intent.Intent{ID: intent.LowDataID(iccid(60), "b1", 100), Kind: intent.LowData, ICCID: iccid(60), TransactionID: "tx60",
		Threshold: 100, UsedVolume: 1 << 30, TotalVolume: 1 << 30, After: []string{intent.LowDataID(iccid(60), "b1", 80)}}
	warn := intent.Intent{ID: intent.LowDataID(iccid(60), "b1", 80), Kind: intent.LowData, ICCID: iccid(60), TransactionID: "tx60",
		Threshold: 80, UsedVolume: 860 << 20, TotalVolume: 1 << 30, SupersededBy: []string{full.ID}}

	// Every intent three times: as if the processor re-published each past
	// the duplicate window; plus exact repeats, which JetStream drops.
	for copy := range 3 {
		for _, w := range wants {
			r.publish(t, w.in, fmt.Sprintf("%s#%d", w.in.ID, copy))
			r.publish(t, w.in, fmt.Sprintf("%s#%d", w.in.ID, copy))
		}
		r.publish(t, warn, fmt.Sprintf("%s#%d", warn.ID, copy))
		r.publish(t, full, fmt.Sprintf("%s#%d", full.ID, copy))
	}
	poll.Until(t, "the late intent's first attempt", func() bool {
		st, _ := r.store.ClaimState(ctx, late.ID)
		return st == store.ClaimHeld
	})
	r.putContact(t, "tx50", `{"email":"late@example.com"}`)

	poll.Until(t, "every expected message", func() bool {
		for _, w := range wants {
			sms, _ := p.sms.count(w.in.ID)
			if len(mails(p.smtp, w.in.ID)) < w.email || sms < w.sms || p.hook.count(w.in.ID) < w.webhook {
				return false
			}
		}
		return len(mails(p.smtp, full.ID)) == 1 && len(r.deadLetters(t)) > 0
	})
	r.quiet(t)

	for _, w := range wants {
		sms, _ := p.sms.count(w.in.ID)
		if e, h := len(mails(p.smtp, w.in.ID)), p.hook.count(w.in.ID); e != w.email || sms != w.sms || h != w.webhook {
			t.Errorf("%s: email %d, sms %d, webhook %d; want %d, %d, %d", w.in.ID, e, sms, h, w.email, w.sms, w.webhook)
		}
		// The log has one "sent", for the channel that got it.
		var sent []string
		for _, s := range r.statuses(t, w.in.ICCID, w.in.ID) {
			if strings.HasPrefix(s, "sent/") {
				sent = append(sent, s)
			}
		}
		if len(sent) != w.email+w.sms+w.webhook || len(slices.Compact(slices.Sorted(slices.Values(sent)))) != len(sent) {
			t.Errorf("%s: log sent entries %v", w.in.ID, sent)
		}
	}
	// The refused one went to the dead letters at its first try, with the
	// reason. A dead letter leaves the claim open, so that a redrive can
	// retry it: each copy of the intent processed later tries once more and
	// is dead-lettered in turn — never retried after a 400 otherwise.
	dl := r.deadLetters(t)
	sent, tries := p.sms.count(dead.ID)
	if sent != 0 || tries != len(dl) {
		t.Errorf("refused sms: %d sent in %d tries, %d dead letters; want none sent, one try per dead letter", sent, tries, len(dl))
	}
	for _, d := range dl {
		if d.intent.ID != dead.ID || !strings.Contains(d.err, "400") {
			t.Errorf("dead letter %+v; want only %s, for its 400", d, dead.ID)
		}
	}
	// Low data: the 100 % once; the 80 % at most once, and never after it.
	all := p.smtp.Mail()
	at := func(id string) int {
		return slices.IndexFunc(all, func(m smtptest.Mail) bool { return m.Header.Get("X-Esimflow-Intent") == id })
	}
	if n := len(mails(p.smtp, warn.ID)); n > 1 || (n == 1 && at(warn.ID) > at(full.ID)) {
		t.Errorf("80%% warning: %d mails, at %d, after the 100%% one at %d", n, at(warn.ID), at(full.ID))
	}
	if st, _ := r.store.ClaimState(ctx, warn.ID); !st.Final() {
		t.Errorf("80%% warning claim %q, want sent or suppressed", st)
	}
}
