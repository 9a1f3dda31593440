package verify

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"hash"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"
)

// macer computes HMAC-SHA256 with one key without allocating per call: the
// keyed hashes and a scratch buffer are pooled, since verification runs on
// every request.
type macer struct{ pool sync.Pool }

type macState struct {
	h   hash.Hash
	sum [sha256.Size]byte
	buf []byte  // the encoded MAC
	dot [1]byte // the separator of signed parts, kept here so writing it allocates nothing
}

func newMacer(key []byte) *macer {
	m := &macer{}
	m.pool.New = func() any {
		return &macState{h: hmac.New(sha256.New, key), buf: make([]byte, 0, 2*sha256.Size), dot: [1]byte{'.'}}
	}
	return m
}

// start returns a reset keyed hash for the caller to write the message to.
func (m *macer) start() *macState {
	st := m.pool.Get().(*macState)
	st.h.Reset()
	return st
}

// encode finishes the MAC of what was written to st and returns it encoded
// (into st's buffer: valid until st is released).
func (st *macState) encode(enc func(dst, mac []byte) []byte) []byte {
	st.buf = enc(st.buf[:0], st.h.Sum(st.sum[:0]))
	return st.buf
}

// release returns st to the pool.
func (m *macer) release(st *macState) { m.pool.Put(st) }

// constantTimeEqual compares without an early exit; only the lengths, which
// are public, are compared first.
func constantTimeEqual(a string, b []byte, fold bool) bool {
	if len(a) != len(b) {
		return false
	}
	var v byte
	for i := 0; i < len(a); i++ {
		c := a[i]
		if fold {
			c |= 0x20
		}
		v |= c ^ b[i]
	}
	return v == 0
}

func appendBase64(dst, mac []byte) []byte { return base64.StdEncoding.AppendEncode(dst, mac) }
func appendHex(dst, mac []byte) []byte    { return hex.AppendEncode(dst, mac) }

// StandardWebhooks verifies the Standard Webhooks scheme: webhook-signature
// holds space-separated "v1,<base64 HMAC-SHA256>" of "<id>.<timestamp>.<body>",
// keyed with the base64 part of a "whsec_" secret; the timestamp must be
// within the tolerance of now, so a captured request cannot be replayed later.
type StandardWebhooks struct {
	keys      [][]byte
	macs      []*macer
	tolerance time.Duration
	now       func() time.Time
	replays   *replays
}

// Bounds on what a signature check reads, so that the work done before a
// request is authenticated stays that of one MAC per secret. Honest senders
// list one signature, two or three while they rotate secrets.
const (
	// MaxSignatureHeader is the longest webhook-signature (or generic
	// signature header) read; longer ones are refused (401).
	MaxSignatureHeader = 4 << 10
	// MaxSignatures is the most entries a webhook-signature may list.
	MaxSignatures = 16
	// MaxWebhookID is the longest webhook-id accepted: it is signed, hashed
	// and kept in the replay cache.
	MaxWebhookID = 256
)

// NewStandardWebhooks returns the check for the given whsec_ secrets. It
// remembers the ids of delivered messages (see Replayed) up to
// DefaultReplayCapacity of them.
func NewStandardWebhooks(secrets []string, tolerance time.Duration, now func() time.Time) (*StandardWebhooks, error) {
	s := &StandardWebhooks{tolerance: tolerance, now: now, replays: newReplays(DefaultReplayCapacity)}
	for i, sec := range secrets {
		key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(sec, "whsec_"))
		if err != nil || len(key) == 0 {
			return nil, fmt.Errorf("standard webhooks secret #%d: not whsec_ followed by base64", i+1)
		}
		s.keys = append(s.keys, key)
		s.macs = append(s.macs, newMacer(key))
	}
	return s, nil
}

// Sign returns the webhook-signature value for a message, with the first
// secret: what a sender (the CLI's webhook test, the notifier) puts on it.
func (s *StandardWebhooks) Sign(id string, ts time.Time, body []byte) string {
	return "v1," + base64.StdEncoding.EncodeToString(swMAC(s.keys[0], id, strconv.FormatInt(ts.Unix(), 10), body))
}

func swMAC(key []byte, id, ts string, body []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id))
	m.Write([]byte{'.'})
	m.Write([]byte(ts))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Verify checks the headers, the timestamp and the signatures: each
// secret's MAC is computed once, then compared in constant time with every
// listed signature. Oversized headers and empty bodies are refused before any
// MAC is computed. The headers are read by their canonical names directly, so
// that nothing is allocated on the way.
func (s *StandardWebhooks) Verify(r Request) error {
	h := r.HTTP.Header
	id, ts, sigs := first(h["Webhook-Id"]), first(h["Webhook-Timestamp"]), first(h["Webhook-Signature"])
	if id == "" || ts == "" || sigs == "" {
		return fail(http.StatusUnauthorized, ReasonNoSignature)
	}
	if len(sigs) > MaxSignatureHeader || strings.Count(sigs, " ") >= MaxSignatures || len(id) > MaxWebhookID {
		return fail(http.StatusUnauthorized, ReasonOversize)
	}
	if len(r.Body) == 0 {
		return fail(http.StatusUnauthorized, ReasonEmptyBody)
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fail(http.StatusUnauthorized, ReasonTimestamp)
	}
	if d := s.now().Sub(time.Unix(sec, 0)); d > s.tolerance || d < -s.tolerance {
		return fail(http.StatusUnauthorized, ReasonTimestamp)
	}
	ok := 0
	for _, m := range s.macs {
		st := m.start()
		st.h.Write(unsafeBytes(id))
		st.h.Write(st.dot[:])
		st.h.Write(unsafeBytes(ts))
		st.h.Write(st.dot[:])
		st.h.Write(r.Body)
		mac := st.encode(appendBase64)
		rest := sigs
		for rest != "" {
			var sig string
			sig, rest, _ = strings.Cut(rest, " ")
			if b64, found := strings.CutPrefix(sig, "v1,"); found {
				ok |= boolInt(constantTimeEqual(b64, mac, false))
			}
		}
		m.release(st)
	}
	if ok != 1 {
		return fail(http.StatusUnauthorized, ReasonSignature)
	}
	return nil
}

// Replayed reports whether a request that passed Verify repeats a message
// already delivered (see Delivered) whose timestamp is still inside the
// tolerance window. The signature covers the id, so only the sender, or
// someone replaying its captured request, can send a known id again.
func (s *StandardWebhooks) Replayed(h http.Header) bool {
	return s.replays.seen(first(h["Webhook-Id"]), s.now())
}

// Delivered records that the message of a request that passed Verify is
// stored: until its timestamp leaves the tolerance window (after which Verify
// refuses it anyway), Replayed reports a repeat.
func (s *StandardWebhooks) Delivered(h http.Header) {
	sec, err := strconv.ParseInt(first(h["Webhook-Timestamp"]), 10, 64)
	if err != nil {
		return
	}
	s.replays.remember(first(h["Webhook-Id"]), time.Unix(sec, 0).Add(s.tolerance), s.now())
}

func first(v []string) string {
	if len(v) == 0 {
		return ""
	}
	return v[0]
}

// HeaderHMAC verifies a plain HMAC-SHA256 of the raw body carried in one
// header, hex or base64, with an optional "sha256=" prefix: how providers
// that do not follow Standard Webhooks usually sign.
type HeaderHMAC struct {
	header string
	base64 bool
	keys   [][]byte
	macs   []*macer
}

// NewHeaderHMAC returns the check; encoding is "hex" or "base64".
func NewHeaderHMAC(header, encoding string, secrets []string) *HeaderHMAC {
	c := &HeaderHMAC{header: http.CanonicalHeaderKey(header), base64: encoding == "base64"}
	for _, sec := range secrets {
		c.keys = append(c.keys, []byte(sec))
		c.macs = append(c.macs, newMacer([]byte(sec)))
	}
	return c
}

// Sign returns the header value for body with the first secret.
func (c *HeaderHMAC) Sign(body []byte) string {
	m := hmac.New(sha256.New, c.keys[0])
	m.Write(body)
	if c.base64 {
		return base64.StdEncoding.EncodeToString(m.Sum(nil))
	}
	return hex.EncodeToString(m.Sum(nil))
}

// Header is the name of the header the signature travels in.
func (c *HeaderHMAC) Header() string { return c.header }

// Verify checks the header against every secret.
func (c *HeaderHMAC) Verify(r Request) error {
	raw := first(r.HTTP.Header[c.header])
	if len(raw) > MaxSignatureHeader {
		return fail(http.StatusUnauthorized, ReasonOversize)
	}
	v := strings.TrimSpace(raw)
	if v == "" {
		return fail(http.StatusUnauthorized, ReasonNoSignature)
	}
	if len(r.Body) == 0 {
		return fail(http.StatusUnauthorized, ReasonEmptyBody)
	}
	v = strings.TrimPrefix(v, "sha256=")
	enc, fold := appendHex, true
	if c.base64 {
		enc, fold = appendBase64, false
	}
	ok := 0
	for _, m := range c.macs {
		st := m.start()
		st.h.Write(r.Body)
		ok |= boolInt(constantTimeEqual(v, st.encode(enc), fold))
		m.release(st)
	}
	if ok != 1 {
		return fail(http.StatusUnauthorized, ReasonSignature)
	}
	return nil
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// unsafeBytes views a string's bytes without copying; the hash only reads them.
func unsafeBytes(s string) []byte { return unsafe.Slice(unsafe.StringData(s), len(s)) }
