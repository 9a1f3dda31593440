// Package natsembed starts the nats-server that the all-in-one embeds: JetStream
// under ESIMFLOW_DATA_DIR, in-process connections only unless
// ESIMFLOW_EMBEDDED_NATS_ADDR asks it to listen, fsync before every ack unless
// ESIMFLOW_EMBEDDED_SYNC relaxes it. Only the all-in-one and the CLI link it.
package natsembed

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"strconv"
	"time"

	"github.com/esimflow/esimflow/shared/config"
	"github.com/esimflow/esimflow/shared/natsconn"
	"github.com/nats-io/nats-server/v2/server"
)

var _ natsconn.StartEmbedded = Start

// Start starts the server and waits until it takes connections.
func Start(cfg config.NATS) (natsconn.EmbeddedServer, error) {
	opts := &server.Options{
		ServerName: "esimflow",
		JetStream:  true,
		StoreDir:   filepath.Join(cfg.DataDir, "jetstream"),
		DontListen: cfg.EmbeddedAddr == "",
		NoSigs:     true,
		NoLog:      true,
		// Durable by default: every ack follows an fsync, so an acked event
		// survives a power loss. An interval trades that for throughput.
		SyncAlways:   cfg.SyncEvery == 0,
		SyncInterval: cfg.SyncEvery,
	}
	if cfg.EmbeddedAddr != "" {
		host, port, err := net.SplitHostPort(cfg.EmbeddedAddr)
		if err != nil {
			return nil, fmt.Errorf("ESIMFLOW_EMBEDDED_NATS_ADDR: %w", err)
		}
		opts.Host = host
		if opts.Port, err = strconv.Atoi(port); err != nil {
			return nil, fmt.Errorf("ESIMFLOW_EMBEDDED_NATS_ADDR: port %q: %w", port, err)
		}
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("embedded nats: %w", err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(30 * time.Second) {
		srv.Shutdown()
		return nil, errors.New("embedded nats: not ready after 30s")
	}
	return srv, nil
}
