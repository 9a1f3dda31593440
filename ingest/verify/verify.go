// Package verify decides whether a webhook request comes from the provider:
// path tokens, HMAC-SHA256 signatures (Standard Webhooks, or a plain header),
// and a sender IP allowlist. Each check is independent; ingest runs every one
// configured and a request must pass them all. Comparisons of secrets are
// constant-time, and no error carries a secret, so errors can be logged.
package verify

import (
	"errors"
	"net/http"
)

// Reason names why a request failed, for metrics and logs. It never contains
// a secret.
type Reason string

const (
	ReasonToken       Reason = "bad_token"
	ReasonNoSignature Reason = "no_signature"
	ReasonSignature   Reason = "bad_signature"
	ReasonTimestamp   Reason = "stale_timestamp"
	ReasonIP          Reason = "ip_not_allowed"
	// ReasonEmptyBody: a signature check got no body. A signature of the
	// empty body signs no event (the empty body's HMAC is a constant, and a
	// bodyless request's event would come from its unsigned query string).
	ReasonEmptyBody Reason = "empty_signed_body"
)

// Failure is a failed check: the HTTP status to answer and why.
type Failure struct {
	Status int
	Reason Reason
}

func (f *Failure) Error() string { return string(f.Reason) }

func fail(status int, r Reason) error { return &Failure{Status: status, Reason: r} }

// AsFailure extracts a Failure from err.
func AsFailure(err error) (*Failure, bool) {
	var f *Failure
	ok := errors.As(err, &f)
	return f, ok
}

// Request is what a check looks at.
type Request struct {
	HTTP *http.Request
	// Token is the {token} path segment ("" when the plain path was used).
	Token string
	// Body is the raw body, as the provider signed it.
	Body []byte
}

// Check verifies one aspect of a request; nil means it passed.
type Check interface {
	Verify(r Request) error
}

// All passes when every check passes, and reports the first failure.
type All []Check

// Verify runs the checks in order.
func (a All) Verify(r Request) error {
	for _, c := range a {
		if err := c.Verify(r); err != nil {
			return err
		}
	}
	return nil
}
