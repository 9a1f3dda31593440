package notifier

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/esimflow/esimflow/notifier/channel"
)

// checker is a channel that can test its peer without sending (the email
// channel: connect, EHLO, TLS, AUTH).
type checker interface {
	Check(ctx context.Context) error
}

// unwrapped is the channel behind wrappers (rate limit, failpoints).
func unwrapped(ch any) any {
	for {
		u, ok := ch.(interface{ Unwrap() channel.Sender })
		if !ok {
			return ch
		}
		ch = u.Unwrap()
	}
}

// peerCheck answers readiness for one channel's peer from its latest check,
// and checks again when that is older than every: readiness is polled far
// more often than an SMTP session is worth opening.
type peerCheck struct {
	name  string
	c     checker
	every time.Duration

	mu   sync.Mutex
	at   time.Time
	last error
}

// Check is the readiness check.
func (p *peerCheck) Check(ctx context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.at.IsZero() && time.Since(p.at) < p.every {
		return p.last
	}
	return p.run(ctx)
}

// run checks now; the caller holds mu.
func (p *peerCheck) run(ctx context.Context) error {
	p.at, p.last = time.Now(), nil
	if err := p.c.Check(ctx); err != nil {
		p.last = fmt.Errorf("%s: %w", p.name, err)
	}
	return p.last
}

// peerChecks are the checks of the channels that have one.
func peerChecks(channels []Channel) []*peerCheck {
	var out []*peerCheck
	for _, ch := range channels {
		if c, ok := unwrapped(ch).(checker); ok {
			out = append(out, &peerCheck{name: ch.Name(), c: c, every: 30 * time.Second})
		}
	}
	return out
}

// checkPeers runs every check once, at start-up. A failure that no retry can
// fix (channel.IsPermanent: a configuration such as credentials that would
// go in clear) stops the notifier with the reason; any other is returned to
// be logged, and readiness reports it until a later check passes.
func checkPeers(ctx context.Context, checks []*peerCheck) (fatal, transient error) {
	var fatals, others []error
	for _, p := range checks {
		p.mu.Lock()
		err := p.run(ctx)
		p.mu.Unlock()
		switch {
		case err == nil:
		case channel.IsPermanent(err):
			fatals = append(fatals, err)
		default:
			others = append(others, err)
		}
	}
	return errors.Join(fatals...), errors.Join(others...)
}

// closeChannels closes the channels that keep connections.
func closeChannels(channels []Channel) {
	for _, ch := range channels {
		if c, ok := unwrapped(ch).(io.Closer); ok {
			_ = c.Close()
		}
	}
}
