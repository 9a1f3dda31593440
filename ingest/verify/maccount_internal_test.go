package verify

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"hash"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

// countingHash counts the bytes written to a MAC: the work of a check,
// measured without a clock.
type countingHash struct {
	hash.Hash
	written *int
}

func (c countingHash) Write(p []byte) (int, error) {
	*c.written += len(p)
	return c.Hash.Write(p)
}

// TestSecurityUnsignedRequestCostsOneMACPerSecret: an unauthenticated
// request listing many signatures hashes its body once per secret, not once
// per secret and entry (which made one request cost ~500 normal ones).
func TestSecurityUnsignedRequestCostsOneMACPerSecret(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	secrets := []string{"key-a", "key-b", "key-c"}
	var whsecs []string
	for _, s := range secrets {
		whsecs = append(whsecs, "whsec_"+base64.StdEncoding.EncodeToString([]byte(s)))
	}
	sw, err := NewStandardWebhooks(whsecs, time.Minute, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	hashed := 0
	for i, m := range sw.macs {
		key := []byte(secrets[i])
		m.pool.New = func() any {
			return &macState{h: countingHash{hmac.New(sha256.New, key), &hashed}, buf: make([]byte, 0, 2*sha256.Size), dot: [1]byte{'.'}}
		}
	}
	body := bytes.Repeat([]byte("x"), 64<<10)
	ts := strconv.FormatInt(now.Unix(), 10)
	cost := func(sig string) int {
		hashed = 0
		r := httptest.NewRequest("POST", "/webhooks/esim", nil)
		r.Header.Set("webhook-id", "m1")
		r.Header.Set("webhook-timestamp", ts)
		r.Header.Set("webhook-signature", sig)
		if err := sw.Verify(Request{HTTP: r, Body: body}); err == nil {
			t.Fatal("a made-up signature passed")
		}
		return hashed
	}
	entry := "v1," + base64.StdEncoding.EncodeToString(make([]byte, 32))
	one, many := cost(entry), cost(strings.TrimSpace(strings.Repeat(entry+" ", MaxSignatures-1)))
	want := len(secrets) * (len("m1") + 1 + len(ts) + 1 + len(body))
	if one != want || many != want {
		t.Errorf("hashed %d bytes for one entry and %d for %d entries, want %d for both (one MAC per secret)", one, many, MaxSignatures-1, want)
	}
}
