package harness

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/prometheus/procfs"
)

// Process is a server the harness started: nats-server, redis-server, one of
// esimflow's binaries, the baseline handler or the Express app. Its output goes
// to a log file in the run's directory, kept for a look when a figure is odd.
type Process struct {
	Name string
	cmd  *exec.Cmd
	done chan error
	log  string
	// admin is the admin listener's base URL of an esimflow binary, for
	// its profiles (Config.Profile); "" for other servers.
	admin string
}

// Start runs bin with args and extra environment, output to dir/<name>.log.
func Start(dir, name, bin string, args []string, env []string) (*Process, error) {
	return start(dir, name, bin, args, env, false)
}

// StartQuiet is Start with standard output discarded: the null channel for
// the notifier's console messages, which would otherwise measure the disk.
func StartQuiet(dir, name, bin string, args []string, env []string) (*Process, error) {
	return start(dir, name, bin, args, env, true)
}

func start(dir, name, bin string, args []string, env []string, quiet bool) (*Process, error) {
	logPath := filepath.Join(dir, name+".log")
	f, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("%s: log file: %w", name, err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = f, f
	if quiet {
		cmd.Stdout = nil // os/exec connects it to the null device
	}
	if err := cmd.Start(); err != nil {
		_ = f.Close()
		return nil, fmt.Errorf("%s: start %s: %w", name, bin, err)
	}
	p := &Process{Name: name, cmd: cmd, done: make(chan error, 1), log: logPath}
	go func() {
		p.done <- cmd.Wait()
		_ = f.Close()
	}()
	return p, nil
}

// PID is the process id, for /proc.
func (p *Process) PID() int { return p.cmd.Process.Pid }

// Stop asks the process to end (SIGTERM) and kills it after 10 s.
func (p *Process) Stop() {
	select {
	case <-p.done:
		return
	default:
	}
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// exited returns the process's end when it has ended early.
func (p *Process) exited() error {
	select {
	case err := <-p.done:
		p.done <- err
		if err == nil {
			err = errors.New("exited")
		}
		return fmt.Errorf("%s %w (log: %s)", p.Name, err, p.log)
	default:
		return nil
	}
}

// Usage is a process's CPU time and memory at one moment.
type Usage struct {
	CPU time.Duration // user + system
	HWM uint64        // peak resident set (VmHWM), bytes
	RSS uint64        // resident set now, bytes
}

// Usage reads /proc/<pid>/stat and status.
func (p *Process) Usage() (Usage, error) { return usageOf(p.PID()) }

func usageOf(pid int) (Usage, error) {
	proc, err := procfs.NewProc(pid)
	if err != nil {
		return Usage{}, fmt.Errorf("proc %d: %w", pid, err)
	}
	stat, err := proc.Stat()
	if err != nil {
		return Usage{}, fmt.Errorf("proc %d stat: %w", pid, err)
	}
	status, err := proc.NewStatus()
	if err != nil {
		return Usage{}, fmt.Errorf("proc %d status: %w", pid, err)
	}
	return Usage{
		CPU: time.Duration(stat.CPUTime() * float64(time.Second)),
		HWM: status.VmHWM,
		RSS: status.VmRSS,
	}, nil
}

// freePort asks the kernel for a loopback port nobody uses.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func freeAddr() (string, error) {
	p, err := freePort()
	if err != nil {
		return "", err
	}
	return "127.0.0.1:" + strconv.Itoa(p), nil
}

// waitTCP waits until addr accepts connections, or p ends, or 30 s pass.
func waitTCP(ctx context.Context, p *Process, addr string) error {
	return waitFor(ctx, p, addr, func() bool {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err != nil {
			return false
		}
		_ = c.Close()
		return true
	})
}

// waitHTTP waits until url answers 200.
func waitHTTP(ctx context.Context, p *Process, url string) error {
	client := &http.Client{Timeout: time.Second}
	return waitFor(ctx, p, url, func() bool {
		resp, err := client.Get(url)
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
}

func waitFor(ctx context.Context, p *Process, what string, ready func() bool) error {
	deadline := time.Now().Add(30 * time.Second)
	for !ready() {
		if err := p.exited(); err != nil {
			return err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s: %s not ready after 30s (log: %s)", p.Name, what, p.log)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return nil
}

// cpuTimes reads the CPU time (user + system) of each process at one moment.
func cpuTimes(pids []int) ([]time.Duration, error) {
	out := make([]time.Duration, len(pids))
	for i, pid := range pids {
		u, err := usageOf(pid)
		if err != nil {
			return nil, err
		}
		out[i] = u.CPU
	}
	return out, nil
}
