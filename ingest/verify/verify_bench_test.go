package verify_test

import (
	"bytes"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/esimflow/esimflow/ingest/verify"
)

// BenchmarkSignature is the check of one signed request: Standard Webhooks
// with two secrets (mid-rotation) and the generic header mode.
func BenchmarkSignature(b *testing.B) {
	body := bytes.Repeat([]byte("x"), 300)
	now := time.Now()
	secrets := []string{"whsec_" + base64.StdEncoding.EncodeToString([]byte("new-key-0123456789")), "whsec_" + base64.StdEncoding.EncodeToString([]byte("old-key-0123456789"))}
	sw, _ := verify.NewStandardWebhooks(secrets, time.Minute, time.Now)
	r := httptest.NewRequest(http.MethodPost, "/webhooks/esim", nil)
	r.Header.Set("webhook-id", "msg_1")
	r.Header.Set("webhook-timestamp", strconv.FormatInt(now.Unix(), 10))
	r.Header.Set("webhook-signature", sw.Sign("msg_1", now, body))
	b.Run("standard-webhooks", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := sw.Verify(verify.Request{HTTP: r, Body: body}); err != nil {
				b.Fatal(err)
			}
		}
	})
	hh := verify.NewHeaderHMAC("X-Signature", "hex", []string{"k2", "k1"})
	r2 := httptest.NewRequest(http.MethodPost, "/webhooks/esim", nil)
	r2.Header.Set("X-Signature", "sha256="+hh.Sign(body))
	b.Run("header-hex", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := hh.Verify(verify.Request{HTTP: r2, Body: body}); err != nil {
				b.Fatal(err)
			}
		}
	})
	tok := verify.NewTokens([]string{"tok-a", "tok-b"})
	b.Run("token", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := tok.Verify(verify.Request{HTTP: r, Token: "tok-b"}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
