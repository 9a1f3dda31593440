package ingest

import (
	"net/netip"
	"sync"

	"golang.org/x/time/rate"
)

// maxTracked bounds the per-IP limiters kept; past it they are all dropped,
// which at worst lets every sender start a fresh burst.
const maxTracked = 100_000

// ipLimiter is a token bucket per sender address.
type ipLimiter struct {
	rate  rate.Limit
	burst int

	mu  sync.Mutex
	ips map[netip.Addr]*rate.Limiter
}

func newIPLimiter(perSecond float64, burst int) *ipLimiter {
	if perSecond <= 0 {
		return nil
	}
	return &ipLimiter{rate: rate.Limit(perSecond), burst: burst, ips: map[netip.Addr]*rate.Limiter{}}
}

// allow reports whether ip may send now. A nil limiter allows everything.
func (l *ipLimiter) allow(ip netip.Addr) bool {
	if l == nil {
		return true
	}
	l.mu.Lock()
	lim, ok := l.ips[ip]
	if !ok {
		if len(l.ips) >= maxTracked {
			clear(l.ips)
		}
		lim = rate.NewLimiter(l.rate, l.burst)
		l.ips[ip] = lim
	}
	l.mu.Unlock()
	return lim.Allow()
}
