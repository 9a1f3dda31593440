package chaos

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"sync"
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
	Requests, OK, Unavailable, OtherStatus, Errors, Retries, Resends atomic.Int64
	BadRequests                                                      atomic.Int64
	mu                                                               sync.Mutex
	byStatus                                                         map[int]int
}

func (s *LoadStats) status(code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byStatus == nil {
		s.byStatus = map[int]int{}
	}
	s.byStatus[code]++
}

// ByStatus returns the answers by HTTP status.
func (s *LoadStats) ByStatus() map[int]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[int]int{}
	for k, v := range s.byStatus {
		out[k] = v
	}
	return out
}

// provider sends events to ingest as the provider does: signed, concurrently,
// retrying every request not answered 200, sometimes twice.
type provider struct {
	urls   []string
	signer *verify.StandardWebhooks
	client *http.Client
	stats  *LoadStats
	seq    atomic.Int64
}

func newProvider(urls []string, secret string, stats *LoadStats) (*provider, error) {
	s, err := verify.NewStandardWebhooks([]string{secret}, time.Minute, time.Now)
	if err != nil {
		return nil, fmt.Errorf("provider signer: %w", err)
	}
	// The provider gives up on an answer after 5 s.
	return &provider{urls: urls, signer: s, client: &http.Client{Timeout: 5 * time.Second}, stats: stats}, nil
}

// post sends body once to a random ingest, signed with webhook id id (or
// with a wrong signature), and returns the status (0 on a transport error)
// and the Retry-After it asked for.
func (p *provider) post(ctx context.Context, rng *rand.Rand, id string, body []byte, badSig bool) (int, time.Duration) {
	url := p.urls[rng.IntN(len(p.urls))]
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, 0
	}
	now := time.Now()
	sig := p.signer.Sign(id, now, body)
	if badSig {
		sig = p.signer.Sign(id, now, append([]byte("x"), body...))
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("webhook-id", id)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(now.Unix(), 10))
	req.Header.Set("webhook-signature", sig)
	p.stats.Requests.Add(1)
	resp, err := p.client.Do(req)
	if err != nil {
		p.stats.Errors.Add(1)
		return 0, 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	p.stats.status(resp.StatusCode)
	var after time.Duration
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil {
		after = time.Duration(s) * time.Second
	}
	switch resp.StatusCode {
	case http.StatusOK:
		p.stats.OK.Add(1)
	case http.StatusServiceUnavailable:
		p.stats.Unavailable.Add(1)
	default:
		p.stats.OtherStatus.Add(1)
	}
	return resp.StatusCode, after
}

// deliver sends s until it is answered 200 or ctx ends. Retries wait as the
// provider does — with backoff, honouring Retry-After up to 3 s (the real
// provider's waits are longer; the run is short).
func (p *provider) deliver(ctx context.Context, rng *rand.Rand, s *Sent) {
	id := "msg_" + strconv.FormatInt(p.seq.Add(1), 36)
	wait := 200 * time.Millisecond
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			p.stats.Retries.Add(1)
		}
		s.attempted.Store(true)
		code, after := p.post(ctx, rng, id, s.Body, false)
		if code == http.StatusOK {
			s.acked.Store(true)
			return
		}
		d := max(wait, min(after, 3*time.Second))
		select {
		case <-ctx.Done():
			return
		case <-time.After(d + time.Duration(rng.Int64N(int64(d)/2+1))):
		}
		wait = min(2*wait, 3*time.Second)
	}
}

// run sends every event at its time with workers goroutines; a share of
// events answered 200 is sent once more a little later, as a provider whose
// first answer timed out on its side would. It returns when every event is
// answered 200 or ctx ends.
func (p *provider) run(ctx context.Context, seed uint64, events []*Sent, workers int) {
	order := slices.Clone(events)
	slices.SortStableFunc(order, func(a, b *Sent) int { return int(a.at - b.at) })
	jobs := make(chan *Sent, workers)
	var wg sync.WaitGroup
	for w := range workers {
		rng := rand.New(rand.NewPCG(seed, uint64(w)+1000))
		wg.Go(func() {
			for s := range jobs {
				p.deliver(ctx, rng, s)
				if rng.Float64() < 0.08 && ctx.Err() == nil {
					p.stats.Resends.Add(1)
					time.Sleep(time.Duration(rng.IntN(500)) * time.Millisecond)
					p.deliver(ctx, rng, s)
				}
			}
		})
	}
	start := time.Now()
	for _, s := range order {
		if d := time.Until(start.Add(s.at)); d > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(d):
			}
		}
		if ctx.Err() != nil {
			break
		}
		jobs <- s
	}
	close(jobs)
	wg.Wait()
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
			p.post(ctx, rng, id, []byte(`{"eventType": "DATA_USAGE", garbage`+tag), false)
		case 1:
			p.post(ctx, rng, id, []byte(`{"eventType":"PROFILE_STATUS","iccid":"89000000000000000000"}`), true)
		case 2:
			p.post(ctx, rng, id, bytes.Repeat([]byte(" "), 300<<10), false)
		case 3:
			s := newSent(fmt.Appendf(nil, `{"eventType":"DATA_USAGE","chaosBad":%q,"usagePercent":"lots"}`, id), true)
			p.deliver(ctx, rng, s)
			stored = append(stored, s)
		}
		p.stats.BadRequests.Add(1)
	}
	return stored
}
