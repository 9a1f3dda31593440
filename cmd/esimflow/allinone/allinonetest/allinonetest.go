// Package allinonetest runs the all-in-one in-process for tests, the way
// httptest runs a server: on ports it holds, stopped when the test ends.
package allinonetest

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/esimflow/esimflow/cmd/esimflow/allinone"
	"github.com/esimflow/esimflow/shared/config"
	"github.com/esimflow/esimflow/shared/poll"
)

// System is a running all-in-one.
type System struct {
	// Hook is the webhook URL (…/webhooks/esim), API the internal API's base URL.
	Hook, API string
	// Messages holds what the console channel printed.
	Messages *Lines
	stop     func()
}

// Start runs the all-in-one with the settings in env (ESIMFLOW_DATA_DIR
// should be t.TempDir() for the embedded server) and waits until /readyz
// answers 200. Options may change its dependencies (a tracer, say).
func Start(t testing.TB, env map[string]string, options ...func(*allinone.Deps)) *System {
	t.Helper()
	cfg, err := config.Load(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	httpLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	adminLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	s := &System{Hook: "http://" + httpLn.Addr().String() + "/webhooks/esim", API: "http://" + adminLn.Addr().String(), Messages: &Lines{}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	deps := allinone.Deps{Logger: log, Messages: s.Messages, Banner: io.Discard, HTTP: httpLn, Admin: adminLn}
	for _, o := range options {
		o(&deps)
	}
	go func() { done <- allinone.Run(ctx, cfg, deps) }()
	var once sync.Once
	s.stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("allinone.Run returned %v on a clean stop", err)
			}
		})
	}
	t.Cleanup(s.stop)
	poll.Until(t, "readiness", func() bool {
		select {
		case err := <-done:
			t.Fatalf("allinone.Run stopped: %v", err)
		default:
		}
		resp, err := http.Get(s.API + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == 200
	})
	return s
}

// Stop shuts the system down cleanly (Ctrl-C); the test fails if it does not.
func (s *System) Stop() { s.stop() }

// Lines is a concurrency-safe writer that keeps what is written to it.
type Lines struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *Lines) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *Lines) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// PutContact registers the contact body under transactionId tx through the
// internal API at api (the all-in-one's, or a notifier's).
func PutContact(t testing.TB, api, tx, body string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPut, api+"/v1/contacts/"+tx, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated && resp.StatusCode != http.StatusOK {
		t.Fatalf("PUT contact %s: %s", tx, resp.Status)
	}
}
