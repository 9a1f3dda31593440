package chaos

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/esimflow/esimflow/shared/failpoint"
)

// Exit is how a process ended.
type Exit struct {
	Proc      string
	At        time.Time
	Failpoint string // the failpoint that killed it, when one did
	Injected  bool   // the runner killed it (a fault or the final stop)
	// Bind is the address the process could not listen on, when that ended
	// it: a restart that found its port held, retried rather than a crash.
	Bind   string
	Status string // the wait status, for reports
}

// Crash reports whether nobody asked the process to end: not the runner, not
// a failpoint, and not a port it could not bind.
func (e Exit) Crash() bool { return !e.Injected && e.Failpoint == "" && e.Bind == "" }

// proc is one child process, restartable, in its own process group so that
// stopping it stops whatever it started.
type proc struct {
	name string
	role string // nats, redis, ingest, processor, notifier
	bin  string
	args []string
	env  []string
	log  string // stdout and stderr, appended across restarts
	// addrs are the loopback addresses it listens on, the one that answers
	// when it is up first.
	addrs []string

	mu       sync.Mutex
	cmd      *exec.Cmd
	done     chan struct{}
	killing  bool // the runner is ending it: its exit is injected
	stopped  bool // SIGSTOPped
	last     Exit // how the last incarnation ended
	maxRSSKB int64
}

// start runs the process; exits reports how it ended.
func (p *proc) start(exits chan<- Exit) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.markStartLocked()
	logf, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("%s log: %w", p.name, err)
	}
	cmd := exec.Command(p.bin, p.args...)
	cmd.Env = p.env
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own group, killed with the runner if the runner dies first.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		return fmt.Errorf("start %s: %w", p.name, err)
	}
	p.cmd, p.done, p.killing, p.stopped = cmd, make(chan struct{}), false, false
	done := p.done
	go func() {
		err := cmd.Wait()
		_ = logf.Close()
		e := Exit{Proc: p.name, At: time.Now(), Status: exitStatus(err)}
		run := lastRun(p.log)
		p.mu.Lock()
		e.Injected = p.killing
		if !e.Injected {
			e.Failpoint = failpointIn(run)
			e.Bind = p.bindFailureIn(run)
		}
		p.cmd, p.last = nil, e
		p.mu.Unlock()
		close(done)
		exits <- e
	}()
	return nil
}

// lastExit returns how the process last ended, when it is not running.
func (p *proc) lastExit() (Exit, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.last, p.cmd == nil && p.last.Proc != ""
}

func exitStatus(err error) string {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.String()
	}
	if err != nil {
		return err.Error()
	}
	return "exit status 0"
}

// lastRun returns what the last incarnation wrote to the log at path: the
// log's tail after the last start marker.
func lastRun(path string) []byte {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	const tail = 64 << 10
	if st, err := f.Stat(); err == nil && st.Size() > tail {
		_, _ = f.Seek(st.Size()-tail, io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	if i := bytes.LastIndex(b, []byte(startedMarker)); i >= 0 {
		b = b[i+len(startedMarker):]
	}
	return b
}

// failpointIn returns the failpoint named at the end of a run's log, if any.
func failpointIn(run []byte) string {
	i := bytes.LastIndex(run, []byte(failpoint.Marker))
	if i < 0 {
		return ""
	}
	line, _, _ := strings.Cut(string(run[i+len(failpoint.Marker):]), "\n")
	return strings.TrimSpace(line)
}

// inUse matches a failed listen as Go, nats-server and redis-server log it:
// "listen tcp 127.0.0.1:23456: bind: address already in use", "Could not
// create server TCP listening socket 127.0.0.1:23456: bind: Address already
// in use".
var inUse = regexp.MustCompile(`(?i)(?:([0-9.]+:[0-9]+): )?bind: address already in use`)

// bindFailureIn returns the address a run's log says could not be bound, or
// "" when it says nothing of the kind.
func (p *proc) bindFailureIn(run []byte) string {
	m := inUse.FindSubmatch(run)
	switch {
	case m == nil:
		return ""
	case len(m[1]) > 0:
		return string(m[1])
	default:
		return strings.Join(p.addrs, ", ")
	}
}

// startedMarker is appended to a log before each start, so a failpoint line
// belongs to the incarnation after the last one.
const startedMarker = "--- chaos: started ---"

func (p *proc) markStartLocked() {
	if f, err := os.OpenFile(p.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644); err == nil {
		_, _ = fmt.Fprintf(f, "\n%s %s\n", startedMarker, time.Now().Format(time.RFC3339Nano))
		_ = f.Close()
	}
}

// signal sends sig to the process group; kill marks the exit as injected.
func (p *proc) signal(sig syscall.Signal) (chan struct{}, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return nil, false
	}
	switch sig {
	case syscall.SIGKILL, syscall.SIGTERM:
		p.killing = true
	case syscall.SIGSTOP:
		p.stopped = true
	case syscall.SIGCONT:
		p.stopped = false
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, sig)
	return p.done, true
}

// stop ends the process with sig and waits for it (SIGKILL after grace).
func (p *proc) stop(sig syscall.Signal, grace time.Duration) {
	done, ok := p.signal(sig)
	if !ok {
		return
	}
	if sig != syscall.SIGKILL {
		p.signal(syscall.SIGCONT)
	}
	select {
	case <-done:
	case <-time.After(grace):
		p.signal(syscall.SIGKILL)
		<-done
	}
}

func (p *proc) running() (pid int, stopped, ok bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return 0, false, false
	}
	return p.cmd.Process.Pid, p.stopped, true
}

// sampleRSS reads the process's resident set from /proc and keeps the maximum.
func (p *proc) sampleRSS() {
	pid, _, ok := p.running()
	if !ok {
		return
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err == nil {
				p.mu.Lock()
				p.maxRSSKB = max(p.maxRSSKB, kb)
				p.mu.Unlock()
			}
		}
	}
}

func (p *proc) maxRSS() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.maxRSSKB
}
