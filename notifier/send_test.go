package notifier_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/esimflow/esimflow/notifier"
	"github.com/esimflow/esimflow/shared/intent"
	"github.com/esimflow/esimflow/shared/poll"
	"github.com/esimflow/esimflow/shared/store"
)

func activation(iccid, tx string) intent.Intent {
	return intent.Intent{ID: intent.ActivationID(iccid), Kind: intent.Activation, ICCID: iccid, TransactionID: tx}
}

// TestRouting: each contact gets its message on the channel routing picks,
// found through each way a contact can be found.
func TestRouting(t *testing.T) {
	t.Parallel()
	p := newPeers(t, nil)
	r := start(t, options{channels: p.channels(t, "email", "sms", "webhook")})
	ctx := context.Background()
	r.putContact(t, "tx-email", `{"name":"Ana","email":"ana@example.com","phone":"+351912345678","locale":"de"}`)
	r.putContact(t, "tx-phone", `{"phone":"+351912345679"}`)
	r.putContact(t, "tx-both", `{"email":"bo@example.com","phone":"+351912345670","channels":["sms","email"]}`)
	r.putContact(t, "tx-hook", `{"name":"Cy","channels":["webhook"]}`)
	r.putContact(t, "tx-index", `{"email":"di@example.com","iccids":["8900000000000000005"]}`)
	r.putContact(t, "tx-state", `{"email":"ed@example.com"}`)
	// The processor's state links this profile to its order's transactionId.
	if _, err := r.store.UpdateProfile(ctx, "8900000000000000006", func(pr *store.Profile) (bool, error) {
		pr.OrderNo, pr.TransactionID = "ORD6", "tx-state"
		return true, nil
	}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name                string
		in                  intent.Intent
		email, sms, webhook int
		logged              []string
	}{
		{"email when configured and known", activation("8900000000000000001", "tx-email"), 1, 0, 0, []string{"sent/email"}},
		{"sms when there is no email", activation("8900000000000000002", "tx-phone"), 0, 1, 0, []string{"sent/sms"}},
		{"the contact's channels: the first that takes it", activation("8900000000000000003", "tx-both"), 0, 1, 0, []string{"sent/sms"}},
		{"the contact's webhook", activation("8900000000000000004", "tx-hook"), 0, 0, 1, []string{"sent/webhook"}},
		{"found by iccid", activation("8900000000000000005", ""), 1, 0, 0, []string{"sent/email"}},
		{"found through the profile's order", activation("8900000000000000006", ""), 1, 0, 0, []string{"sent/email"}},
	}
	for _, tt := range tests {
		r.publish(t, tt.in, tt.in.ID)
	}
	r.quiet(t)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sms, _ := p.sms.count(tt.in.ID)
			if e := len(mails(p.smtp, tt.in.ID)); e != tt.email || sms != tt.sms || p.hook.count(tt.in.ID) != tt.webhook {
				t.Errorf("email %d, sms %d, webhook %d; want %d, %d, %d", e, sms, p.hook.count(tt.in.ID), tt.email, tt.sms, tt.webhook)
			}
			if got := r.statuses(t, tt.in.ICCID, ""); !slices.Equal(got, tt.logged) {
				t.Errorf("log %v, want %v", got, tt.logged)
			}
		})
	}
	// The German contact got German.
	if m := mails(p.smtp, activation("8900000000000000001", "").ID); len(m) != 1 || m[0].Subject != "Ihre eSIM ist aktiv" ||
		!strings.Contains(m[0].Text, "Hallo Ana,") || !strings.Contains(m[0].HTML, `lang="de"`) {
		t.Errorf("german mail %+v", m)
	}
	if d := p.hook.data[activation("8900000000000000004", "").ID]; d.Contact == nil || d.Contact.Name != "Cy" || d.TransactionID != "tx-hook" {
		t.Errorf("webhook data %+v", d)
	}
}

// TestLateContact: the checkout registers the contact after the intent
// arrived; the message waits for it and then goes out once.
func TestLateContact(t *testing.T) {
	t.Parallel()
	p := newPeers(t, nil)
	r := start(t, options{channels: p.channels(t, "email"), env: map[string]string{"ESIMFLOW_CONTACT_WAIT": "1m"}})
	in := activation("8900000000000000011", "tx-late")
	r.publish(t, in, in.ID)
	poll.Until(t, "a first attempt without a contact", func() bool {
		st, _ := r.store.ClaimState(context.Background(), in.ID)
		return st == store.ClaimHeld
	})
	// Waiting, it is listed open with the reason.
	poll.Until(t, "listed waiting", func() bool {
		_, body := call(t, "GET", r.api.URL+"/v1/notifications/open", "")
		notes, _ := body["notifications"].([]any)
		for _, n := range notes {
			if n := n.(map[string]any); n["id"] == in.ID && n["status"] == "waiting" && strings.Contains(n["error"].(string), "no contact") {
				return true
			}
		}
		return false
	})
	r.putContact(t, "tx-late", `{"email":"late@example.com"}`)
	poll.Until(t, "the mail", func() bool { return len(mails(p.smtp, in.ID)) == 1 })
	r.quiet(t)
	if n := len(mails(p.smtp, in.ID)); n != 1 {
		t.Errorf("%d mails, want 1", n)
	}
	if dl := r.deadLetters(t); len(dl) != 0 {
		t.Errorf("dead letters %+v", dl)
	}
	if got := r.statuses(t, in.ICCID, in.ID); !slices.Equal(got, []string{"waiting/", "sent/email"}) {
		t.Errorf("log %v, want one waiting entry, then sent", got)
	}
	if _, body := call(t, "GET", r.api.URL+"/v1/notifications/open", ""); len(body["notifications"].([]any)) != 0 {
		t.Errorf("still open once sent: %v", body)
	}
	// Its text on demand, rendered with the contact now known.
	status, body := call(t, "GET", r.api.URL+"/v1/notifications/"+in.ID+"/preview?iccid="+in.ICCID, "")
	if to, _ := body["to"].(map[string]any); status != 200 || body["subject"] != "Your eSIM is active" || to["email"] != "late@example.com" ||
		fmt.Sprint(body["channels"]) != "[email]" || !strings.Contains(body["text"].(string), "Hello") {
		t.Errorf("preview: %d %v", status, body)
	}
	if status, _ := call(t, "GET", r.api.URL+"/v1/notifications/low_data:1:80/preview?iccid="+in.ICCID, ""); status != 404 {
		t.Errorf("preview of a message never logged: %d", status)
	}
}

// TestNoContactDeadLettered: a contact that never comes ends, after the
// wait, in the dead letters with the reason.
func TestNoContactDeadLettered(t *testing.T) {
	t.Parallel()
	p := newPeers(t, nil)
	r := start(t, options{channels: p.channels(t, "email", "webhook"), env: map[string]string{"ESIMFLOW_CONTACT_WAIT": "2s"}})
	in := activation("8900000000000000021", "tx-never")
	r.publish(t, in, in.ID)
	poll.Until(t, "a dead letter", func() bool { return len(r.deadLetters(t)) == 1 })
	dl := r.deadLetters(t)[0]
	if dl.intent.ID != in.ID || !strings.Contains(dl.err, `no contact for transactionId "tx-never"`) {
		t.Errorf("dead letter %+v", dl)
	}
	// One waiting entry however many deliveries the wait took.
	if got := r.statuses(t, in.ICCID, ""); !slices.Equal(got, []string{"waiting/", "dead_lettered/"}) {
		t.Errorf("log %v", got)
	}
	if len(p.smtp.Mail()) != 0 || p.hook.count(in.ID) != 0 {
		t.Error("something was sent")
	}
}

// TestTransientFailuresRetried: 5xx and 429 (with Retry-After) are retried
// until the API takes the message, which then goes out once.
func TestTransientFailuresRetried(t *testing.T) {
	t.Parallel()
	p := newPeers(t, map[string][]int{"+351912340001": {500, 429}})
	r := start(t, options{channels: p.channels(t, "sms")})
	r.putContact(t, "tx1", `{"phone":"+351912340001"}`)
	in := activation("8900000000000000031", "tx1")
	r.publish(t, in, in.ID)
	poll.Until(t, "the sms", func() bool { sent, _ := p.sms.count(in.ID); return sent == 1 })
	r.quiet(t)
	if sent, tries := p.sms.count(in.ID); sent != 1 || tries != 3 {
		t.Errorf("sent %d in %d tries, want 1 in 3", sent, tries)
	}
	if got := r.statuses(t, in.ICCID, ""); !slices.Equal(got, []string{"failed/sms", "failed/sms", "sent/sms"}) {
		t.Errorf("log %v", got)
	}
}

// TestPermanentFailureDeadLettersAtOnce: a 400 cannot succeed: one try, then
// the dead letters.
func TestPermanentFailureDeadLettersAtOnce(t *testing.T) {
	t.Parallel()
	p := newPeers(t, map[string][]int{"+351912340002": {400}})
	r := start(t, options{channels: p.channels(t, "sms")})
	r.putContact(t, "tx1", `{"phone":"+351912340002"}`)
	in := activation("8900000000000000041", "tx1")
	r.publish(t, in, in.ID)
	poll.Until(t, "a dead letter", func() bool { return len(r.deadLetters(t)) == 1 })
	r.quiet(t)
	if sent, tries := p.sms.count(in.ID); sent != 0 || tries != 1 {
		t.Errorf("sent %d in %d tries, want 0 in 1", sent, tries)
	}
	if dl := r.deadLetters(t)[0]; !strings.Contains(dl.err, "400") {
		t.Errorf("dead letter reason %q", dl.err)
	}
	if got := r.statuses(t, in.ICCID, ""); !slices.Equal(got, []string{"failed/sms", "dead_lettered/"}) {
		t.Errorf("log %v", got)
	}
}

// TestResolver: a contact the store lacks comes from the shop's endpoint,
// which is asked once per key while its answer is cached.
func TestResolver(t *testing.T) {
	t.Parallel()
	var calls atomic.Int32
	shop := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if r.Header.Get("Authorization") != "Bearer shoptoken" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		switch r.URL.Path {
		case "/contacts/tx-shop":
			_, _ = w.Write([]byte(`{"name":"Fe","email":"fe@example.com","locale":"es"}`))
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	t.Cleanup(shop.Close)
	res, err := notifier.NewResolverWith(notifier.ResolverOptions{URL: shop.URL + "/contacts/{transactionId}", Token: "shoptoken", TTL: 60e9, AllowPrivate: true})
	if err != nil {
		t.Fatal(err)
	}
	p := newPeers(t, nil)
	r := start(t, options{channels: p.channels(t, "email"), resolver: res})
	first := activation("8900000000000000061", "tx-shop")
	second := intent.Intent{ID: intent.ValidityLowID("8900000000000000061", "none", 3), Kind: intent.ValidityLow, ICCID: first.ICCID, TransactionID: "tx-shop", RemainDays: 3}
	r.publish(t, first, first.ID)
	poll.Until(t, "the first mail", func() bool { return len(mails(p.smtp, first.ID)) == 1 })
	r.publish(t, second, second.ID)
	poll.Until(t, "the second mail", func() bool { return len(mails(p.smtp, second.ID)) == 1 })
	if n := calls.Load(); n != 1 {
		t.Errorf("resolver asked %d times, want once (cached)", n)
	}
	if m := mails(p.smtp, second.ID)[0]; m.Subject != "Tu plan eSIM caduca en 3 días" || m.To[0] != "fe@example.com" {
		t.Errorf("mail %q to %v", m.Subject, m.To)
	}
}
