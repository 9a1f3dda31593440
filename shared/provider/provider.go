package provider

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"

	"github.com/esimflow/esimflow/shared/dedupe"
	"github.com/esimflow/esimflow/shared/event"
	"github.com/esimflow/esimflow/shared/stream"
)

// Default is the provider of the paths that name none (/webhooks/esim):
// eSIM Access and the providers that post its formats.
const Default = "esimaccess"

// Adapter reads one provider's webhooks.
type Adapter interface {
	// Name is the provider's name: its path segment (/webhooks/{name}),
	// its metrics label, and what stored events say produced them.
	Name() string
	// Version is the adapter's version, stored with every event it read.
	Version() string
	// Decode reads a body into the canonical events it holds, at least
	// one: a body of no kind the adapter knows is one Unknown event (kept
	// and parked, never lost), a body that is not JSON one whose error
	// wraps event.ErrInvalidJSON. An event that cannot be read carries its
	// error (wrapping event.ErrMalformed, naming the field) and still its
	// type where known; the others are checked by dc.
	Decode(dc event.Decoder, body []byte) []Decoded
	// Verifier returns the check of the provider's signature keyed with
	// secrets, or nil when the provider signs nothing or no secret is
	// configured.
	Verifier(secrets []string) (Verifier, error)
}

// Decoded is one canonical event of a body, or why it could not be read.
type Decoded struct {
	Event event.Event
	Err   error
}

// Verifier checks that a request comes from the provider. Its error wraps
// ErrUnverified and never carries a secret.
type Verifier interface {
	Verify(r *http.Request, body []byte) error
}

// Handshaker is an adapter that answers some verified requests itself
// rather than storing them (an SNS SubscriptionConfirmation). Handshake
// reports whether the request was one: ingest then answers 200 and stores
// nothing; an error means the handshake failed (ingest answers 502, so
// that the provider tries again).
type Handshaker interface {
	Handshake(ctx context.Context, body []byte) (bool, error)
}

// Prober is an adapter whose provider probes the webhook URL with a HEAD
// before it enables it (Airalo).
type Prober interface {
	Probes() bool
}

// ErrUnverified marks a request whose sender could not be verified: ingest
// answers 401 and stores nothing.
var ErrUnverified = errors.New("unverified")

// VerifyError is why a request failed verification, in the words of
// ingest's refusal reasons.
type VerifyError struct{ Reason string }

func (e *VerifyError) Error() string        { return e.Reason }
func (e *VerifyError) Is(target error) bool { return target == ErrUnverified }

// The reasons a VerifyError gives (ingest's metrics and logs use them).
const (
	ReasonNoSignature = "no_signature"
	ReasonSignature   = "bad_signature"
	ReasonEmptyBody   = "empty_signed_body"
	ReasonOversize    = "oversize_signature"
	ReasonCertificate = "bad_certificate"
)

func unverified(reason string) error { return &VerifyError{Reason: reason} }

// Registry is the adapters one process knows, by name.
type Registry struct {
	byName map[string]Adapter
}

// NewRegistry returns a registry of the given adapters; a later adapter
// with the name of an earlier one replaces it (a mapping file may override
// a built-in).
func NewRegistry(adapters ...Adapter) *Registry {
	r := &Registry{byName: map[string]Adapter{}}
	for _, a := range adapters {
		r.byName[a.Name()] = a
	}
	return r
}

// Get returns the adapter of a provider; a nil Registry has none.
func (r *Registry) Get(name string) (Adapter, bool) {
	if r == nil {
		return nil, false
	}
	a, ok := r.byName[name]
	return a, ok
}

// Names lists the providers, sorted.
func (r *Registry) Names() []string {
	out := make([]string, 0, len(r.byName))
	for n := range r.byName {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// Headers is how a stored message's headers are read (nats.Header.Get).
type Headers interface{ Get(key string) string }

// DecodeStored reads a stored event: by the adapter its headers name, the
// event at its index; without the headers (events stored before adapters,
// and the default provider's), as event.Decode reads it. A provider this
// process does not know is an error wrapping event.ErrMalformed: the event
// is dead-lettered with the reason, and re-driven once the adapter is
// back.
func (r *Registry) DecodeStored(dc event.Decoder, hdr Headers, body []byte) (event.Event, error) {
	name := ""
	if hdr != nil {
		name = hdr.Get(stream.HeaderProvider)
	}
	if name == "" || name == Default {
		return dc.Decode(body)
	}
	a, ok := r.Get(name)
	if !ok {
		return event.Event{Type: event.Unknown, Format: event.FormatAdapter, Provider: name},
			fmt.Errorf("%w: provider %q: no adapter of that name here (%s)", event.ErrMalformed, name, stream.HeaderProvider)
	}
	idx := 0
	if s := hdr.Get(stream.HeaderEventIndex); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			return event.Event{Type: event.Unknown, Format: event.FormatAdapter, Provider: name},
				fmt.Errorf("%w: %s %q: not an index", event.ErrMalformed, stream.HeaderEventIndex, s)
		}
		idx = n
	}
	evs := a.Decode(dc, body)
	if idx >= len(evs) {
		return event.Event{Type: event.Unknown, Format: event.FormatAdapter, Provider: name},
			fmt.Errorf("%w: %s %d: the body holds %d events", event.ErrMalformed, stream.HeaderEventIndex, idx, len(evs))
	}
	return evs[idx].Event, evs[idx].Err
}

// Key is the dedupe key of the event at index idx of a body: dedupe.Key
// for the default provider's events and an adapter's well-formed ones; for
// an adapter's event that is unknown or malformed, a hash of the provider,
// the index and the body, so that a retry of the same bytes matches and
// the other events of the body do not.
func Key(ev event.Event, decodeErr error, body []byte, idx int) string {
	if ev.Provider == "" || (decodeErr == nil && ev.Type != event.Unknown) {
		return dedupe.Key(ev, decodeErr, body)
	}
	h := sha256.New()
	h.Write([]byte(ev.Provider))
	h.Write([]byte{0})
	h.Write(strconv.AppendInt(nil, int64(idx), 10))
	h.Write([]byte{0})
	h.Write(body)
	return "c:" + hex.EncodeToString(h.Sum(nil)[:16])
}
