package service_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/esimflow/esimflow/shared/config"
	"github.com/esimflow/esimflow/shared/service"
	"github.com/esimflow/esimflow/shared/testns"
	"github.com/nats-io/nats-server/v2/server"
)

// TestOpenWaitsForNATS: a service started while its NATS is not up yet (a
// restart, or a container started first) waits for it and opens, instead of
// exiting — found by the chaos suite.
func TestOpenWaitsForNATS(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	env := map[string]string{"ESIMFLOW_NATS_URL": "nats://127.0.0.1:" + strconv.Itoa(port), "ESIMFLOW_NAMESPACE": testns.New(t)}
	cfg, err := config.Load(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	opened := make(chan error, 1)
	go func() {
		e, err := service.Open(ctx, cfg, slog.New(slog.NewTextHandler(io.Discard, nil)), service.Options{Name: "wait-test"})
		if err == nil {
			e.Close()
		}
		opened <- err
	}()
	select {
	case err := <-opened:
		t.Fatalf("Open returned before NATS was up: %v", err)
	case <-time.After(1500 * time.Millisecond):
	}
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: port, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	t.Cleanup(srv.Shutdown)
	if err := <-opened; err != nil {
		t.Fatalf("Open after NATS came up: %v", err)
	}
}
