package lifecycle_test

import (
	"context"
	"errors"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/esimflow/esimflow/shared/lifecycle"
)

// Deliver retries 429, 5xx and missing answers, gives up a refusal at once
// and stops after its attempts; every attempt carries the delivery's id.
func TestDeliver(t *testing.T) {
	var status atomic.Int32
	var calls atomic.Int32
	ids := make(chan string, 100)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		ids <- r.Header.Get("X-Id")
		w.WriteHeader(int(status.Load()))
	}))
	defer srv.Close()
	s := &lifecycle.Sender{URLs: []string{srv.URL}, Client: srv.Client(), Attempts: 3, Backoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond,
		Sign: func(r *http.Request, id string, _ []byte) { r.Header.Set("X-Id", id) }, Stats: &lifecycle.Stats{}}
	rng := rand.New(rand.NewPCG(1, 1))
	for _, c := range []struct {
		status   int
		calls    int32
		refused  bool
		gaveUp   bool
		delivers bool
	}{
		{200, 1, false, false, true},
		{503, 3, false, true, false},
		{429, 3, false, true, false},
		{401, 1, true, false, false},
	} {
		status.Store(int32(c.status))
		calls.Store(0)
		err := s.Deliver(context.Background(), rng, "id-1", []byte(`{}`))
		if calls.Load() != c.calls || (err == nil) != c.delivers || errors.Is(err, lifecycle.ErrRefused) != c.refused ||
			(err != nil && strings.Contains(err.Error(), "gave up")) != c.gaveUp {
			t.Errorf("HTTP %d: %d calls, %v", c.status, calls.Load(), err)
		}
		for range calls.Load() {
			if id := <-ids; id != "id-1" {
				t.Errorf("attempt signed with id %q", id)
			}
		}
	}
	if got := s.Stats.ByStatus(); got[503] != 3 || got[200] != 1 || s.Stats.Retries.Load() != 4 {
		t.Errorf("stats: %v, %d retries", got, s.Stats.Retries.Load())
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	status.Store(503)
	unbounded := *s
	unbounded.Attempts = 0
	if err := unbounded.Deliver(ctx, rng, "id-2", []byte(`{}`)); !errors.Is(err, context.Canceled) {
		t.Errorf("unbounded delivery after ctx ended: %v", err)
	}
}

// Play hands every item out, in the order of their times.
func TestPlay(t *testing.T) {
	items := []time.Duration{30 * time.Millisecond, 0, 10 * time.Millisecond, 20 * time.Millisecond}
	got := make(chan time.Duration, len(items))
	lifecycle.Play(context.Background(), 1, items, func(d time.Duration) time.Duration { return d }, 1,
		func(_ context.Context, _ *rand.Rand, d time.Duration) { got <- d })
	close(got)
	var order []time.Duration
	for d := range got {
		order = append(order, d)
	}
	if len(order) != 4 || order[0] != 0 || order[3] != 30*time.Millisecond {
		t.Errorf("played %v", order)
	}
}
