// Package verify decides whether a webhook request comes from the provider:
// path tokens, HMAC-SHA256 signatures (Standard Webhooks, or a plain header),
// and a sender IP allowlist. Each check is independent; ingest runs every one
// configured and a request must pass them all. Comparisons of secrets are
// constant-time, and no error carries a secret, so errors can be logged.
//
// Verification costs the same bounded work whatever an unauthenticated
// request sends: a signature header over MaxSignatureHeader bytes or listing
// more than MaxSignatures entries is refused before any MAC is computed, and
// each secret's MAC is computed once per request, then compared with every
// listed signature. A signature check refuses an empty body (401): what is
// signed must be what is stored.
//
// Replays: a Standard Webhooks message is signed with its webhook-id, so a
// request carrying an id already delivered within the tolerance window is the
// sender's retry or a captured request replayed. ingest answers it 200 and
// does not store it again (StandardWebhooks.Replayed, Delivered), rather than
// 409: Standard Webhooks senders retry with the same id, and a non-2xx answer
// would make an honest sender retry a message already stored, forever. The
// cache is bounded (DefaultReplayCapacity, oldest forgotten first) and holds
// only ids whose signature verified and whose event was stored. The generic
// header mode carries no id; its replays fall to the dedupe layers
// (JetStream's duplicate window and the processor's seen-set, both keyed by
// the event's content).
package verify

import (
	"errors"
	"net/http"
	"net/netip"
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
	// ReasonOversize: a signature header (or webhook-id) longer, or listing
	// more signatures, than an honest sender sends (see MaxSignatureHeader).
	ReasonOversize Reason = "oversize_signature"
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
	// Sender, when valid, is the sender's address as a ClientIP found it
	// already (the allowlist then does not read it again).
	Sender netip.Addr
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
