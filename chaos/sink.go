package chaos

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/mail"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-smtp"
)

// Sink stands in for the customers' side of every channel: an SMTP server
// and an HTTP endpoint taking the Twilio-style SMS API, the WhatsApp Cloud
// API's template messages and the signed webhook. It records each message by
// its idempotency key — the Message-ID of an email, the Idempotency-Key of an
// SMS, the biz_opaque_callback_data of a WhatsApp message, the webhook-id of a
// webhook (the intent id) — and counts copies. WhatsApp refuses recipients
// whose number ends in an even digit as not on WhatsApp (a permanent error),
// so that their messages fall back to the next channel.
type Sink struct {
	SMTPAddr string
	HTTPURL  string

	mu     sync.Mutex
	copies map[string]int // "<channel> <key>" → copies received
	total  int
	last   time.Time

	smtp *smtp.Server
	http *http.Server
}

// startSink listens on free loopback ports.
func startSink() (*Sink, error) {
	s := &Sink{copies: map[string]int{}}
	sl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("sink smtp listen: %w", err)
	}
	hl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		_ = sl.Close()
		return nil, fmt.Errorf("sink http listen: %w", err)
	}
	s.SMTPAddr, s.HTTPURL = sl.Addr().String(), "http://"+hl.Addr().String()

	s.smtp = smtp.NewServer(smtp.BackendFunc(func(*smtp.Conn) (smtp.Session, error) { return &smtpSession{sink: s}, nil }))
	s.smtp.Domain = "localhost"
	// Senders killed mid-session are the point of the run, not news.
	s.smtp.ErrorLog = log.New(io.Discard, "", 0)
	s.smtp.ReadTimeout, s.smtp.WriteTimeout = 10*time.Second, 10*time.Second
	go func() { _ = s.smtp.Serve(sl) }()

	mux := http.NewServeMux()
	mux.HandleFunc("POST /2010-04-01/Accounts/{sid}/Messages.json", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		key := r.Header.Get("Idempotency-Key")
		s.record("sms", key)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_, _ = fmt.Fprintf(w, `{"sid":"SM%x","status":"queued"}`, time.Now().UnixNano())
	})
	mux.HandleFunc("POST /v21.0/{phone}/messages", func(w http.ResponseWriter, r *http.Request) {
		var m struct {
			To string `json:"to"`
			ID string `json:"biz_opaque_callback_data"`
		}
		if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&m); err != nil || m.To == "" || m.ID == "" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		if strings.IndexByte("02468", m.To[len(m.To)-1]) >= 0 {
			w.WriteHeader(http.StatusBadRequest)
			_, _ = io.WriteString(w, `{"error":{"message":"not a WhatsApp user","code":131026}}`)
			return
		}
		s.record("whatsapp", m.ID)
		_, _ = fmt.Fprintf(w, `{"messaging_product":"whatsapp","messages":[{"id":"wamid.%x"}]}`, time.Now().UnixNano())
	})
	mux.HandleFunc("POST /hook", func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		s.record("webhook", r.Header.Get("webhook-id"))
		w.WriteHeader(http.StatusNoContent)
	})
	s.http = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = s.http.Serve(hl) }()
	return s, nil
}

func (s *Sink) record(channel, key string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.copies[channel+" "+key]++
	s.total++
	s.last = time.Now()
}

// Copies returns the copies received per "<channel> <key>".
func (s *Sink) Copies() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[string]int, len(s.copies))
	for k, v := range s.copies {
		out[k] = v
	}
	return out
}

// Total is how many messages arrived, and when the last one did.
func (s *Sink) Total() (int, time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.total, s.last
}

// Close stops both servers.
func (s *Sink) Close() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = s.http.Shutdown(ctx)
	_ = s.smtp.Close()
}

type smtpSession struct{ sink *Sink }

func (*smtpSession) Mail(string, *smtp.MailOptions) error { return nil }
func (*smtpSession) Rcpt(string, *smtp.RcptOptions) error { return nil }
func (*smtpSession) Reset()                               {}
func (*smtpSession) Logout() error                        { return nil }

func (ss *smtpSession) Data(r io.Reader) error {
	m, err := mail.ReadMessage(bufio.NewReader(r))
	if err != nil {
		return fmt.Errorf("read message: %w", err)
	}
	_, _ = io.Copy(io.Discard, m.Body)
	id := m.Header.Get("Message-Id")
	if id == "" {
		return errors.New("message without Message-ID")
	}
	ss.sink.record("email", id)
	return nil
}
