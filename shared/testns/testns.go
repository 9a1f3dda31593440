// Package testns gives each test its own namespace (ESIMFLOW_NAMESPACE), so
// tests share one NATS and one Redis without seeing each other's streams, KV
// buckets or keys, and never need to flush a server.
package testns

import (
	"crypto/rand"
	"encoding/hex"
	"testing"
)

// New returns a fresh namespace: letters and digits only, valid in stream,
// subject, bucket and Redis key names.
func New(t testing.TB) string {
	t.Helper()
	b := make([]byte, 5)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("testns: %v", err)
	}
	return "t" + hex.EncodeToString(b)
}
