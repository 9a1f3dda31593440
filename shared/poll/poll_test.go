package poll_test

import (
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/esimflow/esimflow/shared/poll"
)

func TestUntilReturnsOnceTheConditionHolds(t *testing.T) {
	var calls atomic.Int32
	poll.Until(t, "the third call", func() bool { return calls.Add(1) == 3 }, poll.Every(time.Millisecond))
	if n := calls.Load(); n != 3 {
		t.Errorf("%d calls, want 3", n)
	}
}

func TestUntilFailsNamingWhat(t *testing.T) {
	rec := &recorder{TB: t}
	done := make(chan struct{})
	go func() { // Fatalf ends the goroutine it runs on
		defer close(done)
		poll.Until(rec, "a thing that never happens", func() bool { return false }, poll.Timeout(30*time.Millisecond))
	}()
	<-done
	if want := "timed out after 30ms waiting for a thing that never happens"; rec.fatal != want {
		t.Errorf("Fatalf(%q), want %q", rec.fatal, want)
	}
}

// recorder keeps what Fatalf was given instead of failing the test.
type recorder struct {
	testing.TB
	fatal string
}

func (r *recorder) Helper() {}

func (r *recorder) Fatalf(format string, args ...any) {
	r.fatal = strings.TrimSpace(fmt.Sprintf(format, args...))
	runtime.Goexit()
}
