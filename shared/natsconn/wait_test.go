package natsconn_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/esimflow/esimflow/shared/config"
	"github.com/esimflow/esimflow/shared/natsconn"
	"github.com/esimflow/esimflow/shared/poll"
	"github.com/nats-io/nats-server/v2/server"
)

// TestOpenWaitsForNATS: a service (wait) opened while its NATS is down gets
// a connection that comes up with the server — the layout step then waits
// for JetStream — instead of failing at once; a command (no wait) fails.
func TestOpenWaitsForNATS(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	_ = ln.Close()
	cfg := config.NATS{URL: "nats://127.0.0.1:" + strconv.Itoa(port)}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()

	if _, err := natsconn.Open(ctx, cfg, "command", log, nil, false); err == nil {
		t.Error("a command connected to a NATS that is down")
	}
	c, err := natsconn.Open(ctx, cfg, "service", log, nil, true)
	if err != nil {
		t.Fatalf("a service gave up on a NATS that is down: %v", err)
	}
	defer c.Close()

	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: t.TempDir(), NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	srv.Start()
	defer srv.Shutdown()
	poll.Until(t, "connected once NATS is up", c.NC.IsConnected)
	if _, err := c.JS.AccountInfo(ctx); err != nil {
		t.Errorf("jetstream: %v", err)
	}
}
