package verify

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
)

// Tokens accepts a request whose path token is one of several secrets (more
// than one, so a token can be rotated without downtime).
type Tokens struct{ hashes [][sha256.Size]byte }

// NewTokens returns the check for the given tokens.
func NewTokens(tokens []string) *Tokens {
	t := &Tokens{}
	for _, tok := range tokens {
		t.hashes = append(t.hashes, sha256.Sum256([]byte(tok)))
	}
	return t
}

// Verify compares the path token with every configured one in constant time:
// hashing first makes the comparison independent of the tokens' lengths, and
// all of them are compared, so timing tells nothing of which one matched.
func (t *Tokens) Verify(r Request) error {
	got := sha256.Sum256([]byte(r.Token))
	match := 0
	for _, h := range t.hashes {
		match |= subtle.ConstantTimeCompare(got[:], h[:])
	}
	if r.Token == "" || match != 1 {
		return fail(http.StatusUnauthorized, ReasonToken)
	}
	return nil
}
