package clustertest

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
)

// The window the listening ports come from: below the kernel's ephemeral
// range (Linux's default is 32768–60999), where no outgoing connection is
// ever given a local port. A server restarted after a kill -9 finds its port
// free, however many client connections the load holds open; a port from the
// ephemeral range (what listening on :0 hands out) can be taken by one of
// them while its owner is down.
const (
	portsLow  = 20000
	portsHigh = 32767
)

// ephemeralRangeFile is where Linux keeps the range of outgoing local ports.
const ephemeralRangeFile = "/proc/sys/net/ipv4/ip_local_port_range"

// Ports hands out loopback ports: each free when handed out (a listen test on
// 127.0.0.1), never twice by one Ports, and outside the machine's ephemeral
// range. It is safe for concurrent use.
type Ports struct {
	mu    sync.Mutex
	low   int
	high  int
	next  int // where the search resumes
	taken map[int]bool
}

// NewPorts returns a pool of the ports in [20000, 32767] that lie outside the
// ephemeral range read from /proc/sys/net/ipv4/ip_local_port_range.
func NewPorts() (*Ports, error) {
	elo, ehi := 32768, 60999
	if b, err := os.ReadFile(ephemeralRangeFile); err == nil {
		if lo, hi, ok := parsePortRange(string(b)); ok {
			elo, ehi = lo, hi
		}
	}
	low, high, err := outside(portsLow, portsHigh, elo, ehi)
	if err != nil {
		return nil, err
	}
	// Start somewhere at random, so that runs of other test binaries on the
	// same machine seldom probe the same ports at the same time.
	return &Ports{low: low, high: high, next: low + rand.IntN(high-low+1), taken: map[int]bool{}}, nil
}

// parsePortRange reads "32768\t60999".
func parsePortRange(s string) (lo, hi int, ok bool) {
	f := strings.Fields(s)
	if len(f) != 2 {
		return 0, 0, false
	}
	lo, err1 := strconv.Atoi(f[0])
	hi, err2 := strconv.Atoi(f[1])
	return lo, hi, err1 == nil && err2 == nil && lo <= hi
}

// outside returns the largest part of [low, high] outside [elo, ehi].
func outside(low, high, elo, ehi int) (int, int, error) {
	below := [2]int{low, min(high, elo-1)}
	above := [2]int{max(low, ehi+1), high}
	best := below
	if above[1]-above[0] > below[1]-below[0] {
		best = above
	}
	if best[1]-best[0] < 64 {
		return 0, 0, fmt.Errorf("ports: the ephemeral range %d–%d leaves too few ports in %d–%d for the servers", elo, ehi, low, high)
	}
	return best[0], best[1], nil
}

// errNoPort is returned when every port of the pool is taken or busy.
var errNoPort = errors.New("no free port")

// Take returns a port this pool has not handed out before and nothing on the
// machine listens on now.
func (pp *Ports) Take() (int, error) {
	pp.mu.Lock()
	defer pp.mu.Unlock()
	size := pp.high - pp.low + 1
	for range size {
		port := pp.next
		pp.next++
		if pp.next > pp.high {
			pp.next = pp.low
		}
		if pp.taken[port] || !listenable(port) {
			continue
		}
		pp.taken[port] = true
		return port, nil
	}
	return 0, fmt.Errorf("ports %d–%d: %w", pp.low, pp.high, errNoPort)
}

// listenable reports whether 127.0.0.1:port can be listened on now.
func listenable(port int) bool {
	l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		return false
	}
	_ = l.Close()
	return true
}
