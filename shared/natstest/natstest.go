// Package natstest gives tests a real NATS server with JetStream: an in-process
// nats-server on a random port with its storage in t.TempDir(), or the server
// named by ESIMFLOW_TEST_NATS_URL.
package natstest

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/esimflow/esimflow/shared/natsembed"
	"github.com/esimflow/esimflow/shared/testns"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// EnvURL names the variable that points tests at an external NATS.
const EnvURL = "ESIMFLOW_TEST_NATS_URL"

// Server is a NATS server for one test.
type Server struct {
	URL string
	// Embedded is the in-process server, nil when the test uses an external one.
	Embedded *server.Server
}

// Start returns the external server of ESIMFLOW_TEST_NATS_URL when set, else an
// in-process one (see StartEmbedded).
func Start(t testing.TB) *Server {
	t.Helper()
	if url := os.Getenv(EnvURL); url != "" {
		return external(t, url)
	}
	return StartEmbedded(t)
}

// External returns the server of ESIMFLOW_TEST_NATS_URL, or skips the test.
func External(t testing.TB) *Server {
	t.Helper()
	url := os.Getenv(EnvURL)
	if url == "" {
		t.Skipf("%s is not set: no external NATS to test against", EnvURL)
	}
	return external(t, url)
}

// anchorStream is a one-message file stream left on a shared server so that
// its account's stream directory never empties: nats-server 2.9.10 removes
// that directory with its last stream, and a stream created at the same
// moment by a parallel test then fails ("could not create storage directory",
// seen in CI). It holds nothing and is never deleted.
const anchorStream = "ESIMFLOW_TEST_ANCHOR"

func external(t testing.TB, url string) *Server {
	t.Helper()
	s := &Server{URL: url}
	js, err := jetstream.New(s.Connect(t))
	if err != nil {
		t.Fatalf("natstest: jetstream: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: anchorStream, Subjects: []string{"esimflow-test-anchor"},
		Storage: jetstream.FileStorage, MaxMsgs: 1}); err != nil {
		t.Fatalf("natstest: anchor stream on %s: %v", url, err)
	}
	return s
}

// StartEmbedded starts an in-process server with JetStream on a random loopback
// port, shut down when the test ends. Tests that stop or break the server use
// it, never a shared one.
func StartEmbedded(t testing.TB) *Server {
	t.Helper()
	opts := &server.Options{
		Host:      "127.0.0.1",
		Port:      server.RANDOM_PORT,
		JetStream: true,
		StoreDir:  t.TempDir(),
		NoLog:     true,
		NoSigs:    true,
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		t.Fatalf("natstest: new server: %v", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("natstest: server not ready in 10s")
	}
	t.Cleanup(srv.Shutdown)
	return &Server{URL: srv.ClientURL(), Embedded: srv}
}

// Connect opens a connection closed when the test ends.
func (s *Server) Connect(t testing.TB) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(s.URL, nats.Name(t.Name()))
	if err != nil {
		t.Fatalf("natstest: connect %s: %v", s.URL, err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// RemoveNamespace deletes, when the test ends, every stream and KV bucket of
// namespace ns on s: what the test made on a shared server, and nothing else.
// An in-process server goes with its test, so there is nothing to do.
func (s *Server) RemoveNamespace(t testing.TB, ns string) {
	t.Helper()
	if s.Embedded != nil {
		return
	}
	nc := s.Connect(t)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		js, err := jetstream.New(nc)
		if err != nil {
			t.Errorf("natstest: cleanup: %v", err)
			return
		}
		names := js.StreamNames(ctx)
		var mine []string
		for name := range names.Name() {
			if strings.HasPrefix(name, ns+"_") || strings.HasPrefix(name, "KV_"+ns+"_") {
				mine = append(mine, name)
			}
		}
		for _, name := range mine {
			if err := js.DeleteStream(ctx, name); err != nil {
				t.Errorf("natstest: cleanup: delete stream %s: %v", name, err)
			}
		}
	})
}

// Drained reports whether the durable consumer has acked every message its
// stream holds. A consumer's pending count is not enough: the server counts a
// stored message for its consumers asynchronously, so right after a publish
// both NumPending and NumAckPending can read 0 for a message not yet
// delivered. The consumer must also have delivered the stream's last message.
func Drained(ctx context.Context, js jetstream.JetStream, streamName, consumerName string) (bool, error) {
	s, err := js.Stream(ctx, streamName)
	if err != nil {
		return false, err
	}
	si, err := s.Info(ctx)
	if err != nil {
		return false, err
	}
	c, err := s.Consumer(ctx, consumerName)
	if err != nil {
		return false, err
	}
	ci, err := c.Info(ctx)
	if err != nil {
		return false, err
	}
	return ci.Delivered.Stream >= si.State.LastSeq && ci.NumPending == 0 && ci.NumAckPending == 0, nil
}

// OnEachServer runs run as subtests on the newest server (embedded, where
// atomic batches exist) and on the machine's (external: Debian's 2.9.10,
// where they do not; skipped when EnvURL is unset), each with a JetStream
// client and a fresh namespace removed at the end.
func OnEachServer(t *testing.T, run func(t *testing.T, name string, js jetstream.JetStream, ns string)) {
	for name, start := range map[string]func(testing.TB) *Server{
		"embedded": StartEmbedded,
		"external": External,
	} {
		t.Run(name, func(t *testing.T) {
			srv := start(t)
			js, err := jetstream.New(srv.Connect(t))
			if err != nil {
				t.Fatal(err)
			}
			ns := testns.New(t)
			srv.RemoveNamespace(t, ns)
			run(t, name, js, ns)
		})
	}
}

// InProcessSyncAlways starts the all-in-one's server (natsembed, fsync
// before every ack) with its storage in a temporary directory, and returns
// a JetStream client connected to it in process: what the group-commit
// benchmarks measure, with no socket in between.
func InProcessSyncAlways(tb testing.TB) jetstream.JetStream {
	tb.Helper()
	srv, err := natsembed.StartWith(natsembed.Options{DataDir: tb.TempDir(), SyncAlways: true})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(srv.Shutdown)
	opts, err := srv.ConnectOptions()
	if err != nil {
		tb.Fatal(err)
	}
	nc, err := nats.Connect("", append(opts, nats.InProcessServer(srv.Server))...)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		tb.Fatal(err)
	}
	return js
}
