package channel

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// SendError is a classified send failure.
type SendError struct {
	// Permanent: retrying cannot succeed (the dead letters get it at once).
	Permanent bool
	// RetryAfter is the least wait before a retry the peer asked for (429,
	// 503 with Retry-After); zero when it did not say.
	RetryAfter time.Duration
	Err        error
}

func (e *SendError) Error() string { return e.Err.Error() }
func (e *SendError) Unwrap() error { return e.Err }

// Permanent marks err as one that retrying cannot cure.
func Permanent(err error) error { return &SendError{Permanent: true, Err: err} }

// IsPermanent reports whether err, or an error it wraps, is permanent.
// Unclassified errors are transient: a network failure deserves a retry.
func IsPermanent(err error) bool {
	var se *SendError
	return errors.As(err, &se) && se.Permanent
}

// RetryAfter returns the wait the peer asked for, zero when none.
func RetryAfter(err error) time.Duration {
	var se *SendError
	if errors.As(err, &se) {
		return se.RetryAfter
	}
	return 0
}

// checkResponse turns a non-2xx answer into a classified error: 408, 425,
// 429 and 5xx are transient (with the answer's Retry-After), every other
// status permanent — a 4xx repeats itself, and redirects are not followed.
func checkResponse(what string, resp *http.Response) error {
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	err := fmt.Errorf("%s: %s: %s", what, resp.Status, strings.TrimSpace(string(body)))
	switch s := resp.StatusCode; {
	case s == http.StatusRequestTimeout, s == http.StatusTooEarly, s == http.StatusTooManyRequests, s >= 500:
		return &SendError{RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()), Err: err}
	default:
		return Permanent(err)
	}
}

// maxRetryAfter caps what a peer may ask for, so a wrong header cannot park
// a message for days.
const maxRetryAfter = time.Hour

// parseRetryAfter reads delay-seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	if v == "" {
		return 0
	}
	if secs, err := strconv.Atoi(strings.TrimSpace(v)); err == nil {
		return min(max(time.Duration(secs)*time.Second, 0), maxRetryAfter)
	}
	if at, err := http.ParseTime(v); err == nil {
		return min(max(at.Sub(now), 0), maxRetryAfter)
	}
	return 0
}
