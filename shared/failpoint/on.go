//go:build failpoints

package failpoint

import (
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// point is one armed failpoint.
type point struct {
	prob float64
	exit bool // exit(3) without the marker instead of SIGKILL with it
}

// armed is parsed once from the environment. A package variable on purpose:
// the calls sit deep in handlers that must not carry a dependency that exists
// only in test builds.
var armed = sync.OnceValue(func() map[string]point {
	m := map[string]point{}
	for _, item := range strings.Split(os.Getenv(EnvVar), ",") {
		item = strings.TrimSpace(item)
		if item == "" {
			continue
		}
		name, val, ok := strings.Cut(item, "=")
		p := point{prob: 1}
		if ok {
			val, mode, _ := strings.Cut(val, ":")
			f, err := strconv.ParseFloat(val, 64)
			if err != nil {
				fmt.Fprintf(os.Stderr, "%s: bad probability in %q: %v\n", EnvVar, item, err)
				os.Exit(2)
			}
			p = point{prob: f, exit: mode == "exit"}
		}
		m[name] = p
	}
	return m
})

// Inject kills the process at failpoint name with the armed probability.
func Inject(name string) {
	p, ok := armed()[name]
	if !ok || rand.Float64() >= p.prob {
		return
	}
	if p.exit {
		os.Exit(3)
	}
	fmt.Fprintf(os.Stderr, "\n%s %s\n", Marker, name)
	_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
	select {} // the signal is on its way
}

// Enabled reports whether the planted bug name is armed.
func Enabled(name string) bool {
	_, ok := armed()[name]
	return ok
}

var (
	leakMu sync.Mutex
	leaked [][]byte
)

// Retain keeps n bytes alive for the rest of the process: a planted leak.
func Retain(n int) {
	b := make([]byte, n)
	for i := range b {
		b[i] = 1 // touch the pages so they count in RSS
	}
	leakMu.Lock()
	leaked = append(leaked, b)
	leakMu.Unlock()
}
