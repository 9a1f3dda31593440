package notifier_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/esimflow/esimflow/notifier"
	"github.com/esimflow/esimflow/notifier/channel"
	"github.com/esimflow/esimflow/notifier/channel/smtptest"
	"github.com/esimflow/esimflow/notifier/channel/whatsapptest"
	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"
)

// smsPeer is a Twilio-compatible API. Script, per recipient number, lists the
// statuses to answer before it accepts (429s carry Retry-After: 1).
type smsPeer struct {
	t      *testing.T
	srv    *httptest.Server
	mu     sync.Mutex
	script map[string][]int
	tries  map[string]int // requests per intent id (Idempotency-Key)
	sent   map[string]int // accepted messages per intent id
	bodies map[string]string
}

func newSMSPeer(t *testing.T, script map[string][]int) *smsPeer {
	p := &smsPeer{t: t, script: script, tries: map[string]int{}, sent: map[string]int{}, bodies: map[string]string{}}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if user, pass, ok := r.BasicAuth(); !ok || user != "AC1" || pass != "tok" {
			t.Errorf("sms: basic auth %q %q", user, pass)
		}
		to, id := r.FormValue("To"), r.Header.Get("Idempotency-Key")
		p.mu.Lock()
		defer p.mu.Unlock()
		p.tries[id]++
		if s := p.script[to]; len(s) > 0 {
			p.script[to] = s[1:]
			if s[0] == http.StatusTooManyRequests {
				w.Header().Set("Retry-After", "1")
			}
			w.WriteHeader(s[0])
			_, _ = w.Write([]byte(`{"code":1,"message":"scripted"}`))
			return
		}
		p.sent[id]++
		p.bodies[id] = r.FormValue("Body")
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte(`{"sid":"SM` + strings.Repeat("0", 32) + `"}`))
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *smsPeer) count(id string) (sent, tries int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sent[id], p.tries[id]
}

func (p *smsPeer) channel(t *testing.T) notifier.Channel {
	s, err := channel.NewSMS(channel.SMSOptions{BaseURL: p.srv.URL, AccountSID: "AC1", AuthToken: "tok", From: "+15550000000"})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// hookPeer is the reseller's backend: it verifies signatures and counts
// deliveries per webhook-id.
type hookPeer struct {
	srv  *httptest.Server
	mu   sync.Mutex
	sent map[string]int
	data map[string]channel.WebhookData
}

const hookSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

func newHookPeer(t *testing.T) *hookPeer {
	wh, err := standardwebhooks.NewWebhook(hookSecret)
	if err != nil {
		t.Fatal(err)
	}
	p := &hookPeer{sent: map[string]int{}, data: map[string]channel.WebhookData{}}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := wh.Verify(body, r.Header); err != nil {
			t.Errorf("webhook signature: %v", err)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		var pl channel.WebhookPayload
		_ = json.Unmarshal(body, &pl)
		p.mu.Lock()
		p.sent[r.Header.Get("webhook-id")]++
		p.data[r.Header.Get("webhook-id")] = pl.Data
		p.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *hookPeer) count(id string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.sent[id]
}

func (p *hookPeer) channel(t *testing.T) notifier.Channel {
	w, err := channel.NewWebhook(channel.WebhookOptions{URL: p.srv.URL, Secret: hookSecret, AllowPrivate: true})
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// mails counts what the SMTP server accepted for an intent.
func mails(srv *smtptest.Server, id string) []smtptest.Mail {
	var out []smtptest.Mail
	for _, m := range srv.Mail() {
		if m.Header.Get("X-Esimflow-Intent") == id {
			out = append(out, m)
		}
	}
	return out
}

func emailChannel(t *testing.T, srv *smtptest.Server) notifier.Channel {
	e, err := channel.NewEmail(channel.EmailOptions{URL: srv.URL(), From: "Shop <care@shop.example>", TLS: srv.ClientTLS(), Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// peers are one of each real channel peer.
type peers struct {
	smtp *smtptest.Server
	sms  *smsPeer
	hook *hookPeer
	wa   *whatsapptest.Server
}

func newPeers(t *testing.T, smsScript map[string][]int) peers {
	return peers{smtp: smtptest.Start(t, smtptest.Options{Security: smtptest.STARTTLS, User: "u", Password: "p"}),
		sms: newSMSPeer(t, smsScript), hook: newHookPeer(t), wa: whatsapptest.Start(t, nil)}
}

// channels builds a fresh set of channels per instance, as separate
// processes would have.
func (p peers) channels(t *testing.T, names ...string) func(int) []notifier.Channel {
	return func(int) []notifier.Channel {
		var out []notifier.Channel
		for _, n := range names {
			switch n {
			case "email":
				out = append(out, emailChannel(t, p.smtp))
			case "sms":
				out = append(out, p.sms.channel(t))
			case "webhook":
				out = append(out, p.hook.channel(t))
			case "whatsapp":
				w, err := channel.NewWhatsApp(p.wa.Options())
				if err != nil {
					t.Fatal(err)
				}
				out = append(out, w)
			}
		}
		return out
	}
}
