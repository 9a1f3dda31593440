package chaos

import (
	"bytes"
	"context"
	"encoding/json"
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
	orderNo, txn, iccid string
	contact             store.Contact
	events              []*Sent
}

// renewalEpoch is when the load's validity periods end: far ahead, as a
// period already past warns nobody.
var renewalEpoch = time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC)

// plan builds n lifecycles, spread over the load's duration, with their
// contacts: activations, usage warnings, top-ups, suspensions and
// re-activations, validity warnings and renewals. Timestamps increase within a lifecycle; send times are jittered,
// so that neighbours often arrive out of order.
func plan(rng *rand.Rand, n int, span time.Duration) []*esim {
	epoch := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	out := make([]*esim, n)
	for i := range n {
		e := &esim{
			orderNo: fmt.Sprintf("CHAOS%08d", i),
			txn:     fmt.Sprintf("chaos_txn_%08d", i),
			iccid:   fmt.Sprintf("89%017d", i),
		}
		e.contact = store.Contact{TransactionID: e.txn, Name: "Customer " + strconv.Itoa(i), Locale: []string{"en", "de", "es"}[i%3],
			ICCIDs: []string{e.iccid}}
		// Mostly email, some WhatsApp falling back to SMS, some SMS, some the
		// shop's webhook.
		switch r := rng.Float64(); {
		case r < 0.7:
			e.contact.Email = fmt.Sprintf("c%d@customer.example", i)
		case r < 0.85:
			e.contact.Phone = fmt.Sprintf("+4915%09d", i)
			e.contact.Channels = []string{"sms"}
			if r < 0.78 { // WhatsApp first, SMS and email to fall back on (the sink refuses even numbers)
				e.contact.Email = fmt.Sprintf("c%d@customer.example", i)
				e.contact.Channels = []string{"whatsapp", "sms", "email"}
			}
		default:
			e.contact.Email = fmt.Sprintf("c%d@customer.example", i)
			e.contact.Channels = []string{"webhook"}
		}
		ts := epoch.Add(time.Duration(i) * time.Minute)
		next := func() string {
			ts = ts.Add(time.Duration(1+rng.IntN(3600)) * time.Second)
			return ts.Format(time.RFC3339)
		}
		add := func(v any) { e.events = append(e.events, newSent(v, false)) }
		profile := map[string]any{"iccid": e.iccid, "esimTranNo": "ESIM" + strconv.Itoa(i), "status": "GOT_RESOURCE"}
		add(map[string]any{"eventType": "ORDER_STATUS", "orderNo": e.orderNo, "transactionId": e.txn, "status": "GOT_RESOURCE",
			"timestamp": next(), "profiles": []any{profile}})
		if rng.Float64() < 0.05 { // cancelled before use
			add(map[string]any{"eventType": "ORDER_STATUS", "orderNo": e.orderNo, "transactionId": e.txn, "status": "CANCELLED",
				"timestamp": next(), "profiles": []any{map[string]any{"iccid": e.iccid, "esimTranNo": "ESIM" + strconv.Itoa(i), "status": "CANCELLED"}}})
		} else if rng.Float64() < 0.95 {
			if rng.Float64() < 0.2 { // the eSIM Access envelope, with notifyId
				add(map[string]any{"notifyType": "ESIM_STATUS", "notifyId": fmt.Sprintf("chaos-n-%d", i), "eventGenerateTime": next(),
					"content": map[string]any{"orderNo": e.orderNo, "transactionId": e.txn, "iccid": e.iccid, "esimStatus": "IN_USE", "smdpStatus": "ENABLED"}})
			} else {
				add(map[string]any{"eventType": "PROFILE_STATUS", "iccid": e.iccid, "orderNo": e.orderNo,
					"previousStatus": "GOT_RESOURCE", "currentStatus": "ACTIVATED", "timestamp": next()})
			}
			const total = 1 << 30
			for _, u := range []struct {
				pct  int
				prob float64
			}{{50, 0.85}, {80, 0.7}, {100, 0.5}} {
				if rng.Float64() >= u.prob {
					break
				}
				add(map[string]any{"eventType": "DATA_USAGE", "iccid": e.iccid, "orderNo": e.orderNo,
					"usedVolume": int64(total) * int64(u.pct) / 100, "totalVolume": total, "usagePercent": u.pct, "timestamp": next()})
			}
			if rng.Float64() < 0.3 { // a top-up: a 3 GB bundle, warned again at 80 % (issue 14, case 3)
				for _, pct := range []int{40, 85} {
					add(map[string]any{"eventType": "DATA_USAGE", "iccid": e.iccid, "orderNo": e.orderNo,
						"usedVolume": 3 * int64(total) * int64(pct) / 100, "totalVolume": 3 * total, "usagePercent": pct, "timestamp": next()})
				}
			}
			if rng.Float64() < 0.08 {
				add(map[string]any{"eventType": "PROFILE_STATUS", "iccid": e.iccid, "orderNo": e.orderNo,
					"previousStatus": "ACTIVATED", "currentStatus": "SUSPENDED", "timestamp": next()})
				if rng.Float64() < 0.5 { // re-activated: the activation is not sent again
					add(map[string]any{"eventType": "PROFILE_STATUS", "iccid": e.iccid, "orderNo": e.orderNo,
						"previousStatus": "SUSPENDED", "currentStatus": "ACTIVATED", "timestamp": next()})
				}
			}
			if rng.Float64() < 0.3 { // validity warnings, then a renewal warned again (issue 14, case 4)
				period := renewalEpoch.Add(time.Duration(i) * time.Minute)
				for _, v := range []struct {
					left int
					exp  time.Time
				}{{3, period}, {1, period}, {1, period.AddDate(0, 1, 0)}} {
					add(map[string]any{"notifyType": "VALIDITY_USAGE", "eventGenerateTime": next(), "content": map[string]any{
						"orderNo": e.orderNo, "transactionId": e.txn, "iccid": e.iccid, "durationUnit": "DAY", "totalDuration": 30,
						"expiredTime": v.exp.Format(time.RFC3339), "remain": v.left}})
				}
			}
		}
		start := time.Duration(rng.Int64N(int64(span) * 85 / 100))
		for k, s := range e.events {
			gap := time.Duration(k) * time.Duration(300+rng.IntN(1200)) * time.Millisecond
			jitter := time.Duration(rng.IntN(1500)) * time.Millisecond
			s.at = start + gap + jitter
		}
		out[i] = e
	}
	return out
}

func newSent(v any, bad bool) *Sent {
	body, err := json.Marshal(v)
	if err != nil {
		panic(err) // maps of plain values always marshal
	}
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
			s := newSent(map[string]any{"eventType": "DATA_USAGE", "chaosBad": id, "usagePercent": "lots"}, true)
			p.deliver(ctx, rng, s)
			stored = append(stored, s)
		}
		p.stats.BadRequests.Add(1)
	}
	return stored
}
