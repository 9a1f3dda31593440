package ingest_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/esimflow/esimflow/ingest"
	"github.com/esimflow/esimflow/shared/admin"
	"github.com/esimflow/esimflow/shared/config"
	"github.com/esimflow/esimflow/shared/natstest"
	"github.com/esimflow/esimflow/shared/poll"
	"github.com/esimflow/esimflow/shared/stream"
	"github.com/esimflow/esimflow/shared/testns"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// gatedPublisher holds every publish until released: a slow JetStream.
type gatedPublisher struct {
	ingest.Publisher
	entered chan struct{}
	release chan struct{}
}

func (g *gatedPublisher) PublishMsg(ctx context.Context, m *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	g.entered <- struct{}{}
	<-g.release
	return g.Publisher.PublishMsg(ctx, m, opts...)
}

// TestShutdownAnswersInFlight: a request being published when shutdown
// begins still gets its true answer (200, and the event is stored), and new
// connections are refused.
func TestShutdownAnswersInFlight(t *testing.T) {
	srv := natstest.StartEmbedded(t)
	js, err := jetstream.New(srv.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	ns := testns.New(t)
	cfg, err := config.Load(func(k string) string { return map[string]string{"ESIMFLOW_NAMESPACE": ns}[k] })
	if err != nil {
		t.Fatal(err)
	}
	names := stream.NewNames(ns)
	if _, _, err := stream.Ensure(context.Background(), js, names, stream.Limits{Replicas: 1, EventsMaxBytes: -1, MaxDeliver: 10}); err != nil {
		t.Fatal(err)
	}
	gate := &gatedPublisher{Publisher: js, entered: make(chan struct{}), release: make(chan struct{})}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- ingest.Run(ctx, cfg.Ingest, ingest.Deps{Publisher: gate, Admin: admin.New(""), Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Listener: ln})
	}()
	url := "http://" + ln.Addr().String() + "/webhooks/esim"

	answer := make(chan int, 1)
	go func() {
		resp, err := http.Post(url, "application/json", strings.NewReader(goodEvent))
		if err != nil {
			answer <- 0
			return
		}
		resp.Body.Close()
		answer <- resp.StatusCode
	}()
	<-gate.entered // the request is publishing
	cancel()       // SIGTERM
	waitClosed(t, ln.Addr().String())
	close(gate.release)
	if code := <-answer; code != 200 {
		t.Errorf("in-flight request answered %d, want 200", code)
	}
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
	s, _ := js.Stream(context.Background(), names.Stream(stream.Events))
	if info, _ := s.Info(context.Background()); info.State.Msgs != 1 {
		t.Errorf("stored %d events, want the in-flight one", info.State.Msgs)
	}
}

// waitClosed polls until the listener refuses new connections.
func waitClosed(t *testing.T, addr string) {
	t.Helper()
	poll.Until(t, "the listener to refuse connections after shutdown began", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err != nil
	}, poll.Timeout(5*time.Second))
}
