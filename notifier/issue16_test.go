package notifier_test

import (
	"context"
	"slices"
	"testing"

	"github.com/esimflow/esimflow/shared/intent"
	"github.com/esimflow/esimflow/shared/poll"
	"github.com/esimflow/esimflow/shared/store"
)

// lowData returns the 80 % and 100 % warnings of one bundle, ordered as
// the processor orders them.
func lowData(iccid, tx string) (w80, w100 intent.Intent) {
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
	w80, w100 := lowData("8900000000000001601", "tx-c2")
	r.publish(t, w80, w80.ID)
	poll.Until(t, "the 80 % dead-lettered", func() bool { return len(r.deadLetters(t)) == 1 })
	if st, _ := r.store.ClaimState(context.Background(), w80.ID); st != store.ClaimDeadLettered {
		t.Errorf("the 80 %%'s claim is %q; want dead_lettered", st)
	}
	r.publish(t, w100, w100.ID)
	poll.Until(t, "the 100 % dead-lettered", func() bool { return len(r.deadLetters(t)) == 2 })

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
