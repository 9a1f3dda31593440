// Package poll is how esimflow's tests wait: until a condition holds, or a
// limit passes and the test fails naming what it waited for. Tests never
// sleep for a fixed time to let something happen.
package poll

import (
	"testing"
	"time"
)

// Defaults of Until: generous, since a loaded machine running every
// module's tests with -race can be slow; a condition that holds returns at
// once.
const (
	DefaultTimeout  = time.Minute
	DefaultInterval = 20 * time.Millisecond
)

// Option changes how Until waits.
type Option func(*settings)

type settings struct {
	timeout, interval time.Duration
}

// Timeout sets how long Until waits before failing the test.
func Timeout(d time.Duration) Option { return func(s *settings) { s.timeout = d } }

// Every sets how often Until calls the condition.
func Every(d time.Duration) Option { return func(s *settings) { s.interval = d } }

// Until calls cond until it returns true. When the timeout (DefaultTimeout
// unless set) passes first, it fails the test with t.Fatalf, naming what:
// "timed out after 1m0s waiting for <what>". Call it from the test's
// goroutine, as Fatalf requires.
func Until(t testing.TB, what string, cond func() bool, opts ...Option) {
	t.Helper()
	s := settings{timeout: DefaultTimeout, interval: DefaultInterval}
	for _, o := range opts {
		o(&s)
	}
	deadline := time.Now().Add(s.timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", s.timeout, what)
		}
		time.Sleep(s.interval)
	}
}
