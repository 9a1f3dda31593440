package ingest

import (
	"container/list"
	"net/netip"
	"sync"

	"golang.org/x/time/rate"
)

// maxTracked bounds the senders whose buckets are kept; past it the least
// recently seen sender's bucket is dropped (it starts a fresh burst if it
// comes back), never every bucket at once.
const maxTracked = 100_000

// ipLimiter is a token bucket per sender: an IPv4 address, or an IPv6 /64
// (what one host or customer line is given, so rotating addresses inside it
// gains nothing).
type ipLimiter struct {
	rate  rate.Limit
	burst int

	mu      sync.Mutex
	senders map[netip.Prefix]*list.Element // of *bucket
	lru     list.List                      // most recently seen first
}

type bucket struct {
	sender netip.Prefix
	lim    *rate.Limiter
}

func newIPLimiter(perSecond float64, burst int) *ipLimiter {
	if perSecond <= 0 {
		return nil
	}
	return &ipLimiter{rate: rate.Limit(perSecond), burst: burst, senders: map[netip.Prefix]*list.Element{}}
}

// senderOf is the key an address is limited by.
func senderOf(ip netip.Addr) netip.Prefix {
	ip = ip.Unmap()
	bits := 32
	if ip.Is6() {
		bits = 64
	}
	p, err := ip.Prefix(bits)
	if err != nil { // the zero Addr: unreadable peers share one bucket
		return netip.Prefix{}
	}
	return p
}

// allow reports whether ip may send now. A nil limiter allows everything.
func (l *ipLimiter) allow(ip netip.Addr) bool {
	if l == nil {
		return true
	}
	key := senderOf(ip)
	l.mu.Lock()
	var b *bucket
	if e, ok := l.senders[key]; ok {
		l.lru.MoveToFront(e)
		b = e.Value.(*bucket)
	} else {
		if l.lru.Len() >= maxTracked {
			oldest := l.lru.Back()
			l.lru.Remove(oldest)
			delete(l.senders, oldest.Value.(*bucket).sender)
		}
		b = &bucket{sender: key, lim: rate.NewLimiter(l.rate, l.burst)}
		l.senders[key] = l.lru.PushFront(b)
	}
	l.mu.Unlock()
	return b.lim.Allow()
}
