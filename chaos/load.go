package chaos

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/esimflow/esimflow/ingest/verify"
	"github.com/esimflow/esimflow/shared/dedupe"
	"github.com/esimflow/esimflow/shared/event"
	"github.com/esimflow/esimflow/shared/lifecycle"
	"github.com/esimflow/esimflow/shared/store"
)

// Sent is one event the provider sends, and what came of it.
type Sent struct {
	Key  string
	Body []byte
	// Bad marks a deliberately malformed event (valid JSON, not an event):
	// it must be stored, answered 200, and end in the dead letters.
	Bad bool
	at  time.Duration // when to send, from the start of the load

	attempted atomic.Bool
	acked     atomic.Bool
}

// esim is one customer's eSIM as the load plays it.
type esim struct {
	txn     string
	contact store.Contact
	events  []*Sent
}

// plan builds n lifecycles (lifecycle.Plan), spread over the load's
// duration, with their contacts; send times are jittered by up to 1.5 s, as
// far as the gap between a lifecycle's steps, so neighbours often arrive out
// of order.
func plan(rng *rand.Rand, n int, span time.Duration) ([]*esim, error) {
	ls, err := lifecycle.Plan(rng, lifecycle.Options{ESIMs: n, Span: span, Jitter: 1500 * time.Millisecond, Prefix: "CHAOS", ICCIDPrefix: "89"})
	if err != nil {
		return nil, err
	}
	out := make([]*esim, len(ls))
	for i, l := range ls {
		e := &esim{txn: l.TransactionID, contact: l.Contact}
		for _, ev := range l.Events {
			s := newSent(ev.Body, false)
			s.at = ev.At
			e.events = append(e.events, s)
		}
		out[i] = e
	}
	return out, nil
}

func newSent(body []byte, bad bool) *Sent {
	ev, decodeErr := event.Decode(body)
	return &Sent{Key: dedupe.Key(ev, decodeErr, body), Body: body, Bad: bad}
}

// LoadStats count what the provider saw.
type LoadStats struct {
	lifecycle.Stats
	Resends, BadRequests atomic.Int64
}

// provider sends events to ingest as the provider does (lifecycle.Sender):
// signed, concurrently, each to a random ingest, retrying every request not
// answered 200 until the load ends, some sent twice.
type provider struct {
	sender *lifecycle.Sender
	signer *verify.StandardWebhooks
	stats  *LoadStats
	seq    atomic.Int64
}

func newProvider(urls []string, secret string, stats *LoadStats) (*provider, error) {
	sw, err := verify.NewStandardWebhooks([]string{secret}, time.Minute, time.Now)
	if err != nil {
		return nil, fmt.Errorf("provider signer: %w", err)
	}
	// The provider gives up on an answer after 5 s; retries wait as it does
	// — with backoff, honouring Retry-After up to 3 s (the real provider's
	// waits are longer; the run is short).
	return &provider{signer: sw, stats: stats, sender: &lifecycle.Sender{URLs: urls, Client: &http.Client{Timeout: 5 * time.Second},
		Sign:    func(r *http.Request, id string, body []byte) { standardWebhook(r, sw, id, body, false) },
		Backoff: 200 * time.Millisecond, MaxBackoff: 3 * time.Second, MaxRetryAfter: 3 * time.Second, Stats: &stats.Stats}}, nil
}

// standardWebhook signs r as Standard Webhooks, or, when bad, with the
// signature of another body.
func standardWebhook(r *http.Request, sw *verify.StandardWebhooks, id string, body []byte, bad bool) {
	now := time.Now()
	sig := sw.Sign(id, now, body)
	if bad {
		sig = sw.Sign(id, now, append([]byte("x"), body...))
	}
	r.Header.Set("webhook-id", id)
	r.Header.Set("webhook-timestamp", strconv.FormatInt(now.Unix(), 10))
	r.Header.Set("webhook-signature", sig)
}

// deliver sends s until it is answered 200 or ctx ends.
func (p *provider) deliver(ctx context.Context, rng *rand.Rand, s *Sent) {
	s.attempted.Store(true)
	if p.sender.Deliver(ctx, rng, "msg_"+strconv.FormatInt(p.seq.Add(1), 36), s.Body) == nil {
		s.acked.Store(true)
	}
}

// run sends every event at its time with workers goroutines; a share of
// events answered 200 is sent once more a little later, as a provider whose
// first answer timed out on its side would. It returns when every event is
// answered 200 or ctx ends.
func (p *provider) run(ctx context.Context, seed uint64, events []*Sent, workers int) {
	lifecycle.Play(ctx, seed, events, func(s *Sent) time.Duration { return s.at }, workers, func(ctx context.Context, rng *rand.Rand, s *Sent) {
		p.deliver(ctx, rng, s)
		if rng.Float64() < 0.08 && ctx.Err() == nil {
			p.stats.Resends.Add(1)
			time.Sleep(time.Duration(rng.IntN(500)) * time.Millisecond)
			p.deliver(ctx, rng, s)
		}
	})
}

// badBurst sends requests ingest must refuse — not JSON, a wrong signature,
// an oversize body — and valid JSON that is no event, which must be stored
// and dead-lettered. It returns the latter, with whether each was answered 200.
func (p *provider) badBurst(ctx context.Context, rng *rand.Rand, n int, tag string) []*Sent {
	var stored []*Sent
	for i := range n {
		id := "bad_" + tag + "_" + strconv.Itoa(i)
		switch i % 4 {
		case 0:
			p.sender.Post(ctx, rng, id, []byte(`{"eventType": "DATA_USAGE", garbage`+tag))
		case 1:
			badSig := *p.sender
			badSig.Sign = func(r *http.Request, id string, body []byte) { standardWebhook(r, p.signer, id, body, true) }
			badSig.Post(ctx, rng, id, []byte(`{"eventType":"PROFILE_STATUS","iccid":"89000000000000000000"}`))
		case 2:
			p.sender.Post(ctx, rng, id, bytes.Repeat([]byte(" "), 300<<10))
		case 3:
			s := newSent(fmt.Appendf(nil, `{"eventType":"DATA_USAGE","chaosBad":%q,"usagePercent":"lots"}`, id), true)
			p.deliver(ctx, rng, s)
			stored = append(stored, s)
		}
		p.stats.BadRequests.Add(1)
	}
	return stored
}
