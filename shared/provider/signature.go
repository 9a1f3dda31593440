package provider

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"hash"
	"net/http"
	"strings"
)

// maxSignatureHeader bounds what a signature check reads, so that an
// unauthenticated request costs one MAC per secret and no more.
const maxSignatureHeader = 4 << 10

// Verifier of a mapping: HMAC or HTTP Basic auth, by its Signature.
func (a *mapped) Verifier(secrets []string) (Verifier, error) {
	return a.sig.verifier(secrets)
}

func (s Signature) verifier(secrets []string) (Verifier, error) {
	if len(secrets) == 0 {
		return nil, nil
	}
	switch s.Scheme {
	case "hmac":
		h := &hmacCheck{header: http.CanonicalHeaderKey(s.Header), prefix: s.Prefix, encoding: s.Encoding, signed: s.Signed, newHash: sha256.New}
		if s.Algorithm == "sha512" {
			h.newHash = sha512.New
		}
		for _, sec := range secrets {
			h.keys = append(h.keys, []byte(sec))
		}
		return h, nil
	case "basic":
		b := &basicCheck{}
		for _, sec := range secrets {
			user, pass, ok := strings.Cut(sec, ":")
			if !ok {
				return nil, errors.New("basic auth secret: want user:password")
			}
			b.pairs = append(b.pairs, [2]string{user, pass})
		}
		return b, nil
	}
	return nil, nil
}

// hmacCheck verifies an HMAC of the body carried in one header.
type hmacCheck struct {
	header, prefix, encoding, signed string
	newHash                          func() hash.Hash
	keys                             [][]byte
}

// Sign returns the header value for body with the first secret, encoded
// as the provider encodes it (hex for "any"): what `esimflow webhook test`
// sends.
func (c *hmacCheck) Sign(body []byte) (string, string) {
	mac := c.mac(c.keys[0], body)
	if c.encoding == "base64" {
		return c.header, c.prefix + base64.StdEncoding.EncodeToString(mac)
	}
	return c.header, c.prefix + hex.EncodeToString(mac)
}

func (c *hmacCheck) mac(key, body []byte) []byte {
	m := hmac.New(c.newHash, key)
	m.Write(body)
	return m.Sum(nil)
}

func (c *hmacCheck) Verify(r *http.Request, body []byte) error {
	raw := r.Header.Get(c.header)
	if len(raw) > maxSignatureHeader {
		return unverified(ReasonOversize)
	}
	v := strings.TrimPrefix(strings.TrimSpace(raw), c.prefix)
	if v == "" {
		return unverified(ReasonNoSignature)
	}
	if len(body) == 0 {
		return unverified(ReasonEmptyBody)
	}
	sig := c.decode(v)
	if sig == nil {
		return unverified(ReasonSignature)
	}
	bodies := [][]byte{body}
	if c.signed == "compact" || c.signed == "raw-or-compact" {
		var buf bytes.Buffer
		if json.Compact(&buf, body) == nil {
			if c.signed == "compact" {
				bodies = bodies[:0]
			}
			bodies = append(bodies, buf.Bytes())
		}
	}
	ok := 0
	for _, key := range c.keys {
		for _, b := range bodies {
			ok |= subtle.ConstantTimeCompare(c.mac(key, b), sig)
		}
	}
	if ok != 1 {
		return unverified(ReasonSignature)
	}
	return nil
}

// decode reads the signature in the configured encoding (either, for
// "any": hex when it is hex, else base64); nil when it is neither.
func (c *hmacCheck) decode(v string) []byte {
	if c.encoding != "base64" {
		if b, err := hex.DecodeString(v); err == nil {
			return b
		}
		if c.encoding == "hex" {
			return nil
		}
	}
	if b, err := base64.StdEncoding.DecodeString(v); err == nil {
		return b
	}
	return nil
}

// basicCheck verifies HTTP Basic auth against user:password pairs.
type basicCheck struct{ pairs [][2]string }

func (c *basicCheck) Sign([]byte) (string, string) {
	return "Authorization", "Basic " + base64.StdEncoding.EncodeToString([]byte(c.pairs[0][0]+":"+c.pairs[0][1]))
}

func (c *basicCheck) Verify(r *http.Request, _ []byte) error {
	user, pass, ok := r.BasicAuth()
	if !ok {
		return unverified(ReasonNoSignature)
	}
	match := 0
	for _, p := range c.pairs {
		match |= subtle.ConstantTimeCompare([]byte(user), []byte(p[0])) & subtle.ConstantTimeCompare([]byte(pass), []byte(p[1]))
	}
	if match != 1 {
		return unverified(ReasonSignature)
	}
	return nil
}

// Signer is a verifier that can also sign, for `esimflow webhook test`:
// Sign returns the header and its value for a body.
type Signer interface {
	Sign(body []byte) (header, value string)
}
