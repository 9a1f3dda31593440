package clustertest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Node is one server of a cluster: the program, its arguments, the address
// clients use and its data directory.
type Node struct {
	// Name is the server's name in its cluster (the nats-server server_name).
	Name string
	Bin  string
	Args []string
	// Addr is the client address, 127.0.0.1:port.
	Addr string
	Dir  string
}

// Process runs a Node; it can be killed, stopped, continued and started
// again with the same data directory and ports. It is safe for concurrent use.
type Process struct {
	Node
	// Log is the file stdout and stderr are appended to, across restarts.
	Log string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// NewProcess returns n, not started, logging to log.
func NewProcess(n Node, log string) *Process { return &Process{Node: n, Log: log} }

// Start runs the server; it does not wait for it to listen (WaitListening).
func (p *Process) Start() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd != nil {
		return fmt.Errorf("%s is running", p.Name)
	}
	logf, err := os.OpenFile(p.Log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("%s log: %w", p.Name, err)
	}
	cmd := exec.Command(p.Bin, p.Args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group, killed with the test if the test dies first.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		_ = logf.Close()
		return fmt.Errorf("start %s: %w", p.Name, err)
	}
	done := make(chan struct{})
	p.cmd, p.done = cmd, done
	go func() {
		_ = cmd.Wait()
		_ = logf.Close()
		p.mu.Lock()
		if p.cmd == cmd {
			p.cmd = nil
		}
		p.mu.Unlock()
		close(done)
	}()
	return nil
}

// Running reports whether the process runs (stopped counts as running).
func (p *Process) Running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd != nil
}

// Signal sends sig to the process; false when it is not running.
func (p *Process) Signal(sig syscall.Signal) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return false
	}
	_ = syscall.Kill(-p.cmd.Process.Pid, sig)
	return true
}

// Kill ends the process with SIGKILL and waits until it is gone.
func (p *Process) Kill() { p.StopWith(syscall.SIGKILL, 0) }

// StopWith ends the process with sig and waits until it is gone, sending
// SIGKILL after grace.
func (p *Process) StopWith(sig syscall.Signal, grace time.Duration) {
	p.mu.Lock()
	done := p.done
	p.mu.Unlock()
	if !p.Signal(sig) {
		return
	}
	if sig != syscall.SIGKILL {
		p.Signal(syscall.SIGCONT)
		select {
		case <-done:
			return
		case <-time.After(grace):
		}
		p.Signal(syscall.SIGKILL)
	}
	<-done
}

// WaitListening waits until the client address accepts connections, the
// process ends, or ctx ends.
func (p *Process) WaitListening(ctx context.Context) error {
	for {
		conn, err := net.DialTimeout("tcp", p.Addr, time.Second)
		if err == nil {
			_ = conn.Close()
			return nil
		}
		if !p.Running() {
			return fmt.Errorf("%s ended before it listened on %s (log %s)", p.Name, p.Addr, p.Log)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s does not answer on %s: %w (log %s)", p.Name, p.Addr, ctx.Err(), p.Log)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// CPU returns the user and system time the running process has used, 0 when
// it is not running or /proc cannot tell.
func (p *Process) CPU() time.Duration {
	p.mu.Lock()
	cmd := p.cmd
	p.mu.Unlock()
	if cmd == nil {
		return 0
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(cmd.Process.Pid) + "/stat")
	if err != nil {
		return 0
	}
	// Fields after the command name, which ends with the last ')': state is
	// the first, utime the 12th, stime the 13th, in clock ticks (100 a second).
	_, rest, _ := strings.Cut(string(b), ") ")
	f := strings.Fields(rest)
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}
