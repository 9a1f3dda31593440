package verify_test

import (
	"bytes"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
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

// BenchmarkWorstCaseUnauthenticatedSignature is the most CPU one unsigned
// request can cost the Standard Webhooks check (issue 13, item 3): the
// largest body ingest reads (256 KiB) and three secrets (mid-rotation plus
// one), with a signature header as full of "v1," entries as the HTTP server
// lets through (~4 800), and with the most entries the check reads (16). It
// reports CPU per request: compare it with BenchmarkSignature/standard-webhooks,
// a normal request.
func BenchmarkWorstCaseUnauthenticatedSignature(b *testing.B) {
	body := bytes.Repeat([]byte("x"), 256<<10)
	now := time.Now()
	key := func(s string) string { return "whsec_" + base64.StdEncoding.EncodeToString([]byte(s)) }
	sw, err := verify.NewStandardWebhooks([]string{key("key-a-0123456789"), key("key-b-0123456789"), key("key-c-0123456789")}, 5*time.Minute, time.Now)
	if err != nil {
		b.Fatal(err)
	}
	entry := "v1," + base64.StdEncoding.EncodeToString(make([]byte, 32))
	for _, tt := range []struct{ name, sig string }{
		{"4800-entries", strings.TrimSuffix(strings.Repeat("v1, ", 4800), " ")},
		{"16-entries", strings.TrimSuffix(strings.Repeat(entry+" ", 16), " ")},
	} {
		b.Run(tt.name, func(b *testing.B) {
			r := httptest.NewRequest(http.MethodPost, "/webhooks/esim", nil)
			r.Header.Set("webhook-id", "msg_attack")
			r.Header.Set("webhook-timestamp", strconv.FormatInt(now.Unix(), 10))
			r.Header.Set("webhook-signature", tt.sig)
			b.ReportAllocs()
			for b.Loop() {
				if err := sw.Verify(verify.Request{HTTP: r, Body: body}); err == nil {
					b.Fatal("a forged request passed")
				}
			}
		})
	}
}
