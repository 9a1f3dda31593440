package ingest

import (
	"net/netip"
	"testing"
)

// TestSecurityIPv6SenderCannotRotateAddressesPastRateLimit: one IPv6 host
// holds a /64 (2^64 addresses); keyed per address, it never runs out of
// fresh buckets. Senders are keyed by their /64 (IPv4: the address).
func TestSecurityIPv6SenderCannotRotateAddressesPastRateLimit(t *testing.T) {
	l := newIPLimiter(0.001, 1)
	base := netip.MustParseAddr("2001:db8:1:2::1").As16()
	allowed := 0
	for i := range 50 {
		a := base
		a[15], a[14] = byte(i), byte(i*7)
		if l.allow(netip.AddrFrom16(a)) {
			allowed++
		}
	}
	if allowed != 1 {
		t.Errorf("50 addresses of one /64 were allowed %d requests, want the burst of 1", allowed)
	}
	if !l.allow(netip.MustParseAddr("2001:db8:1:3::1")) {
		t.Error("another /64 shares the bucket")
	}
	if !l.allow(netip.MustParseAddr("192.0.2.1")) || !l.allow(netip.MustParseAddr("192.0.2.2")) {
		t.Error("two IPv4 addresses share a bucket")
	}
}

// TestSecurityRateLimiterFloodDoesNotResetEveryBucket: filling the table with
// fresh addresses must not hand a limited sender a fresh burst; the least
// recently used buckets go first.
func TestSecurityRateLimiterFloodDoesNotResetEveryBucket(t *testing.T) {
	l := newIPLimiter(0.001, 1)
	abuser := netip.MustParseAddr("198.51.100.7")
	if !l.allow(abuser) {
		t.Fatal("first request refused")
	}
	for i := range maxTracked + 10 {
		l.allow(netip.AddrFrom4([4]byte{10, byte(i >> 16), byte(i >> 8), byte(i)}))
		if i%1000 == 0 && l.allow(abuser) {
			t.Fatalf("after %d other senders the limited sender was allowed again", i)
		}
	}
	if l.allow(abuser) {
		t.Error("after the flood the limited sender was allowed again")
	}
}
