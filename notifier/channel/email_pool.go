package channel

import (
	"sync"
	"time"

	gomail "github.com/wneessen/go-mail"
	"github.com/wneessen/go-mail/smtp"
)

// session is one SMTP connection, greeted, in TLS and authenticated as the
// URL asks, between messages.
type session struct {
	gm   *gomail.Client
	sc   *smtp.Client
	idle time.Time // when it was put back
}

func (s *session) close() {
	// QUIT politely; a session that is already broken is closed anyway.
	if err := s.gm.CloseWithSMTPClient(s.sc); err != nil {
		_ = s.sc.Close()
	}
}

// pool keeps up to maxIdle sessions for idleTimeout. Sessions are used one
// message at a time: a worker takes one, sends, puts it back; concurrent
// workers open more.
type pool struct {
	maxIdle     int
	idleTimeout time.Duration

	mu   sync.Mutex
	idle []*session // the most recently used last
}

// get returns a kept session that has not idled out (reused true), or nil.
func (p *pool) get() (s *session, reused bool) {
	p.mu.Lock()
	var stale []*session
	for len(p.idle) > 0 && s == nil {
		last := p.idle[len(p.idle)-1]
		p.idle = p.idle[:len(p.idle)-1]
		if time.Since(last.idle) < p.idleTimeout {
			s = last
		} else {
			stale = append(stale, last)
		}
	}
	p.mu.Unlock()
	for _, st := range stale {
		st.close()
	}
	return s, s != nil
}

// put keeps s for the next message, or closes it when the pool is full.
func (p *pool) put(s *session) {
	s.idle = time.Now()
	p.mu.Lock()
	if len(p.idle) < p.maxIdle {
		p.idle = append(p.idle, s)
		s = nil
	}
	p.mu.Unlock()
	if s != nil {
		s.close()
	}
}

// closeIdle closes every kept session.
func (p *pool) closeIdle() {
	p.mu.Lock()
	idle := p.idle
	p.idle = nil
	p.mu.Unlock()
	for _, s := range idle {
		s.close()
	}
}
