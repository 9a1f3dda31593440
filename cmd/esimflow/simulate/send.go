package simulate

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
)

// delivery is one webhook of the plan and what the sender does with it.
type delivery struct {
	esim  int // index in the plan
	event int // index in its lifecycle
	body  []byte
	at    time.Duration // when to send, from the start, paced
	// drop: never sent; twice: sent again after its 200, as a provider
	// whose first answer timed out on its side does.
	drop, twice bool
}

// Stats count what the sender did.
type Stats struct {
	Webhooks, Sent, Dropped, Duplicates, Retries, Failed atomic.Int64
	// Statuses counts the answers by HTTP status (0: no answer).
	mu       sync.Mutex
	statuses map[int]int
}

func (s *Stats) answered(code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.statuses == nil {
		s.statuses = map[int]int{}
	}
	s.statuses[code]++
}

// Statuses returns the answers by HTTP status (0: no answer).
func (s *Stats) Statuses() map[int]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make(map[int]int, len(s.statuses))
	for k, v := range s.statuses {
		out[k] = v
	}
	return out
}

// sender posts webhooks to one URL as the provider does: signed, from a
// bounded pool of workers, each retried until it is answered 200 — on 5xx,
// 429 and timeouts with backoff, honouring Retry-After — or refused for
// good (another 4xx), or its attempts run out.
type sender struct {
	url      string
	sign     func(*http.Request, []byte)
	client   *http.Client
	attempts int
	backoff  time.Duration // first wait; doubles up to 8×
	stats    *Stats
}

// maxRetryAfter bounds how long a Retry-After makes the sender wait: the
// real provider waits longer, a simulation should not stall.
const maxRetryAfter = 5 * time.Second

// deliver sends body until it is answered 200; it returns an error when it
// gives up.
func (s *sender) deliver(ctx context.Context, rng *rand.Rand, body []byte) error {
	wait := s.backoff
	var last string
	for attempt := range s.attempts {
		if attempt > 0 {
			s.stats.Retries.Add(1)
		}
		code, after, err := s.post(ctx, body)
		switch {
		case err != nil:
			last = err.Error()
		case code == http.StatusOK:
			return nil
		case code == http.StatusTooManyRequests || code >= 500:
			last = "HTTP " + strconv.Itoa(code)
		default:
			return fmt.Errorf("refused with HTTP %d, not retried: %.120s", code, body)
		}
		d := max(wait, min(after, maxRetryAfter))
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(d + time.Duration(rng.Int64N(int64(d)/2+1))):
		}
		wait = min(2*wait, 8*s.backoff)
	}
	return fmt.Errorf("gave up after %d attempts (last: %s): %.120s", s.attempts, last, body)
}

// post sends body once and returns the status and the Retry-After asked for.
func (s *sender) post(ctx context.Context, body []byte) (int, time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return 0, 0, fmt.Errorf("webhook request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	if s.sign != nil {
		s.sign(req, body)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		s.stats.answered(0)
		return 0, 0, err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	_ = resp.Body.Close()
	s.stats.answered(resp.StatusCode)
	var after time.Duration
	if n, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil {
		after = time.Duration(n) * time.Second
	}
	return resp.StatusCode, after, nil
}

// play sends every delivery at its time from workers goroutines and calls
// happened for each, sent or dropped, when its time comes (the provider's
// query API then knows of it). It returns when every delivery is done, with
// the errors of those given up on.
func (s *sender) play(ctx context.Context, seed uint64, ds []*delivery, workers int, happened func(*delivery)) []error {
	order := slices.Clone(ds)
	slices.SortStableFunc(order, func(a, b *delivery) int { return int(a.at - b.at) })
	jobs := make(chan *delivery)
	var mu sync.Mutex
	var errs []error
	var wg sync.WaitGroup
	for w := range workers {
		rng := rand.New(rand.NewPCG(seed, uint64(w)+1000))
		wg.Go(func() {
			for d := range jobs {
				err := s.deliver(ctx, rng, d.body)
				if err == nil && d.twice {
					s.stats.Duplicates.Add(1)
					err = s.deliver(ctx, rng, d.body)
				}
				if err != nil {
					s.stats.Failed.Add(1)
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
					continue
				}
				s.stats.Sent.Add(1)
			}
		})
	}
	start := time.Now()
	for _, d := range order {
		if wait := time.Until(start.Add(d.at)); wait > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(wait):
			}
		}
		if ctx.Err() != nil {
			break
		}
		s.stats.Webhooks.Add(1)
		happened(d)
		if d.drop {
			s.stats.Dropped.Add(1)
			continue
		}
		select {
		case jobs <- d:
		case <-ctx.Done():
		}
	}
	close(jobs)
	wg.Wait()
	if ctx.Err() != nil {
		errs = append(errs, fmt.Errorf("stopped: %w", ctx.Err()))
	}
	return errs
}
