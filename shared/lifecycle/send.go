package lifecycle

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Sender posts webhooks as a provider does: signed, each attempt to one of
// its URLs, retried with backoff until answered 200. Its fields are set
// before use and not changed after; its methods are safe for concurrent use.
type Sender struct {
	// URLs are the webhook endpoints; each attempt goes to one at random
	// (several ingest instances behind no balancer).
	URLs []string
	// Sign adds the signature headers to an attempt; id is the delivery's,
	// the same on each of its attempts. Nil: unsigned.
	Sign func(r *http.Request, id string, body []byte)
	// Client sends; its timeout is how long the provider waits for an answer.
	Client *http.Client
	// Attempts bounds a delivery's attempts; 0 retries until ctx ends.
	Attempts int
	// Backoff is the first wait before a retry, doubled up to MaxBackoff;
	// a Retry-After is honoured up to MaxRetryAfter.
	Backoff, MaxBackoff, MaxRetryAfter time.Duration
	// Stats count the attempts and answers.
	Stats *Stats
}

// Stats count what a sender saw.
type Stats struct {
	Requests, OK, Unavailable, OtherStatus, Errors, Retries atomic.Int64

	mu       sync.Mutex
	byStatus map[int]int
}

func (s *Stats) status(code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byStatus == nil {
		s.byStatus = map[int]int{}
	}
	s.byStatus[code]++
}

// ByStatus returns the answers by HTTP status.
func (s *Stats) ByStatus() map[int]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.byStatus)
}

// ErrRefused is a delivery answered with a 4xx other than 408 and 429: the
// provider does not retry what the receiver says it will never take.
var ErrRefused = errors.New("refused")

// Post sends body once to a random URL and returns the status (0 when no
// answer came) and the Retry-After asked for.
func (s *Sender) Post(ctx context.Context, rng *rand.Rand, id string, body []byte) (int, time.Duration) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.URLs[rng.IntN(len(s.URLs))], bytes.NewReader(body))
	if err != nil {
		return 0, 0
	}
	req.Header.Set("Content-Type", "application/json")
	if s.Sign != nil {
		s.Sign(req, id, body)
	}
	s.Stats.Requests.Add(1)
	resp, err := s.Client.Do(req)
	if err != nil {
		s.Stats.Errors.Add(1)
		return 0, 0
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	_ = resp.Body.Close()
	s.Stats.status(resp.StatusCode)
	switch resp.StatusCode {
	case http.StatusOK:
		s.Stats.OK.Add(1)
	case http.StatusServiceUnavailable:
		s.Stats.Unavailable.Add(1)
	default:
		s.Stats.OtherStatus.Add(1)
	}
	var after time.Duration
	if n, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil {
		after = time.Duration(n) * time.Second
	}
	return resp.StatusCode, after
}

// Deliver sends body until it is answered 200 (nil), is refused
// (ErrRefused), its attempts run out or ctx ends. It attempts at least once.
func (s *Sender) Deliver(ctx context.Context, rng *rand.Rand, id string, body []byte) error {
	wait := s.Backoff
	last := "no attempt"
	for attempt := 0; s.Attempts == 0 || attempt < s.Attempts; attempt++ {
		if attempt > 0 {
			s.Stats.Retries.Add(1)
		}
		code, after := s.Post(ctx, rng, id, body)
		switch {
		case code == http.StatusOK:
			return nil
		case code == 0:
			last = "no answer"
		case code >= 400 && code < 500 && code != http.StatusRequestTimeout && code != http.StatusTooManyRequests:
			return fmt.Errorf("%w with HTTP %d, not retried", ErrRefused, code)
		default:
			last = "HTTP " + strconv.Itoa(code)
		}
		d := max(wait, min(after, s.MaxRetryAfter))
		select {
		case <-ctx.Done():
			return fmt.Errorf("stopped after %d attempts (last: %s): %w", attempt+1, last, ctx.Err())
		case <-time.After(d + time.Duration(rng.Int64N(int64(d)/2+1))):
		}
		wait = min(2*wait, s.MaxBackoff)
	}
	return fmt.Errorf("gave up after %d attempts (last: %s)", s.Attempts, last)
}

// Play hands each item to do at its time (at, from now) from workers
// goroutines, each with a random source of its own drawn from seed. It
// returns when every item is done or, once ctx ends, every item handed out.
func Play[T any](ctx context.Context, seed uint64, items []T, at func(T) time.Duration, workers int, do func(context.Context, *rand.Rand, T)) {
	order := slices.Clone(items)
	slices.SortStableFunc(order, func(a, b T) int { return int(at(a) - at(b)) })
	jobs := make(chan T, workers)
	var wg sync.WaitGroup
	for w := range workers {
		rng := rand.New(rand.NewPCG(seed, uint64(w)+1000))
		wg.Go(func() {
			for it := range jobs {
				do(ctx, rng, it)
			}
		})
	}
	start := time.Now()
	for _, it := range order {
		if d := time.Until(start.Add(at(it))); d > 0 {
			select {
			case <-ctx.Done():
			case <-time.After(d):
			}
		}
		if ctx.Err() != nil {
			break
		}
		jobs <- it
	}
	close(jobs)
	wg.Wait()
}
