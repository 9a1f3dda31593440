package verify

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// StandardWebhooks verifies the Standard Webhooks scheme: webhook-signature
// holds space-separated "v1,<base64 HMAC-SHA256>" of "<id>.<timestamp>.<body>",
// keyed with the base64 part of a "whsec_" secret; the timestamp must be
// within the tolerance of now, so a captured request cannot be replayed later.
type StandardWebhooks struct {
	keys      [][]byte
	tolerance time.Duration
	now       func() time.Time
}

// NewStandardWebhooks returns the check for the given whsec_ secrets.
func NewStandardWebhooks(secrets []string, tolerance time.Duration, now func() time.Time) (*StandardWebhooks, error) {
	s := &StandardWebhooks{tolerance: tolerance, now: now}
	for i, sec := range secrets {
		key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(sec, "whsec_"))
		if err != nil || len(key) == 0 {
			return nil, fmt.Errorf("standard webhooks secret #%d: not whsec_ followed by base64", i+1)
		}
		s.keys = append(s.keys, key)
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

// Verify checks the headers, the timestamp and every signature against every
// secret.
func (s *StandardWebhooks) Verify(r Request) error {
	h := r.HTTP.Header
	id, ts, sigs := h.Get("webhook-id"), h.Get("webhook-timestamp"), h.Get("webhook-signature")
	if id == "" || ts == "" || sigs == "" {
		return fail(http.StatusUnauthorized, ReasonNoSignature)
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return fail(http.StatusUnauthorized, ReasonTimestamp)
	}
	if d := s.now().Sub(time.Unix(sec, 0)); d > s.tolerance || d < -s.tolerance {
		return fail(http.StatusUnauthorized, ReasonTimestamp)
	}
	ok := 0
	for _, key := range s.keys {
		want := swMAC(key, id, ts, r.Body)
		for _, sig := range strings.Fields(sigs) {
			version, b64, found := strings.Cut(sig, ",")
			if !found || version != "v1" {
				continue
			}
			got, err := base64.StdEncoding.DecodeString(b64)
			if err != nil {
				continue
			}
			ok |= boolInt(hmac.Equal(got, want))
		}
	}
	if ok != 1 {
		return fail(http.StatusUnauthorized, ReasonSignature)
	}
	return nil
}

// HeaderHMAC verifies a plain HMAC-SHA256 of the raw body carried in one
// header, hex or base64, with an optional "sha256=" prefix: how providers
// that do not follow Standard Webhooks usually sign.
type HeaderHMAC struct {
	header string
	base64 bool
	keys   [][]byte
}

// NewHeaderHMAC returns the check; encoding is "hex" or "base64".
func NewHeaderHMAC(header, encoding string, secrets []string) *HeaderHMAC {
	c := &HeaderHMAC{header: header, base64: encoding == "base64"}
	for _, sec := range secrets {
		c.keys = append(c.keys, []byte(sec))
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
	v := strings.TrimSpace(r.HTTP.Header.Get(c.header))
	if v == "" {
		return fail(http.StatusUnauthorized, ReasonNoSignature)
	}
	v = strings.TrimPrefix(v, "sha256=")
	var got []byte
	var err error
	if c.base64 {
		got, err = base64.StdEncoding.DecodeString(v)
	} else {
		got, err = hex.DecodeString(strings.ToLower(v))
	}
	if err != nil {
		return fail(http.StatusUnauthorized, ReasonSignature)
	}
	ok := 0
	for _, key := range c.keys {
		m := hmac.New(sha256.New, key)
		m.Write(r.Body)
		ok |= boolInt(hmac.Equal(got, m.Sum(nil)))
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
