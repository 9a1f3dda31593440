// Package natsconn opens esimflow's NATS connection: to an external server or
// cluster (ESIMFLOW_NATS_URL), or to an embedded nats-server with JetStream that
// it starts in-process, so one binary runs the whole system on a laptop with the
// same code that scales out on a cluster.
package natsconn

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/esimflow/esimflow/shared/config"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Conn is an open NATS connection with its JetStream context, and the embedded
// server behind it when there is one.
type Conn struct {
	NC       *nats.Conn
	JS       jetstream.JetStream
	Embedded *server.Server
}

// Open connects to cfg.NATSURL, or starts the embedded server when it is empty.
// name identifies the client in the server's monitoring.
func Open(ctx context.Context, cfg config.Config, name string, log *slog.Logger) (*Conn, error) {
	opts := []nats.Option{
		nats.Name(name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				log.Warn("nats disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) { log.Info("nats reconnected", "url", nc.ConnectedUrlRedacted()) }),
	}
	c := &Conn{}
	url := cfg.NATSURL
	if url != "" {
		sec, err := securityOptions(cfg.NATS)
		if err != nil {
			return nil, err
		}
		opts = append(opts, sec...)
	}
	if url == "" {
		srv, err := startEmbedded(cfg)
		if err != nil {
			return nil, err
		}
		c.Embedded = srv
		opts = append(opts, nats.InProcessServer(srv))
		log.Info("embedded nats started", "store", filepath.Join(cfg.DataDir, "jetstream"),
			"listen", orNone(cfg.EmbeddedNATSAddr), "sync_always", cfg.EmbeddedSyncAlways)
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("connect nats %s: %w", orNone(config.RedactURLs(url)), err)
	}
	c.NC = nc
	js, err := jetstream.New(nc)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	c.JS = js
	if _, err := js.AccountInfo(ctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("jetstream not available on %s: %w", nc.ConnectedUrlRedacted(), err)
	}
	return c, nil
}

// Close drains the connection (pending publishes and acks go out) and then
// stops the embedded server, if any.
func (c *Conn) Close() {
	if c.NC != nil {
		if err := c.NC.Drain(); err == nil {
			deadline := time.Now().Add(5 * time.Second)
			for !c.NC.IsClosed() && time.Now().Before(deadline) {
				time.Sleep(10 * time.Millisecond)
			}
		}
		c.NC.Close()
	}
	if c.Embedded != nil {
		c.Embedded.Shutdown()
		c.Embedded.WaitForShutdown()
	}
}

// securityOptions turns the credential and TLS settings into connect options.
// A user and password, or a token, travel in the URL, which nats.go reads.
func securityOptions(sec config.NATSSecurity) ([]nats.Option, error) {
	var opts []nats.Option
	switch {
	case sec.CredsFile != "":
		if err := readable(sec.CredsFile); err != nil {
			return nil, fmt.Errorf("ESIMFLOW_NATS_CREDS: %w", err)
		}
		opts = append(opts, nats.UserCredentials(sec.CredsFile))
	case sec.NkeyFile != "":
		o, err := nats.NkeyOptionFromSeed(sec.NkeyFile)
		if err != nil {
			return nil, fmt.Errorf("ESIMFLOW_NATS_NKEY: %w", err)
		}
		opts = append(opts, o)
	}
	if sec.CAFile != "" {
		if err := readable(sec.CAFile); err != nil {
			return nil, fmt.Errorf("ESIMFLOW_NATS_TLS_CA: %w", err)
		}
		opts = append(opts, nats.RootCAs(sec.CAFile))
	}
	if sec.CertFile != "" {
		if _, err := tls.LoadX509KeyPair(sec.CertFile, sec.KeyFile); err != nil {
			return nil, fmt.Errorf("ESIMFLOW_NATS_TLS_CERT: %w", err)
		}
		opts = append(opts, nats.ClientCert(sec.CertFile, sec.KeyFile))
	}
	return opts, nil
}

// readable checks a file up front, so a wrong path is reported as such at
// start-up rather than as a failed handshake on every reconnect.
func readable(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	return f.Close()
}

func startEmbedded(cfg config.Config) (*server.Server, error) {
	opts := &server.Options{
		ServerName: "esimflow",
		JetStream:  true,
		StoreDir:   filepath.Join(cfg.DataDir, "jetstream"),
		DontListen: cfg.EmbeddedNATSAddr == "",
		NoSigs:     true,
		NoLog:      true,
		// Durable by default: every ack follows an fsync, so an acked event
		// survives a power loss. An interval trades that for throughput.
		SyncAlways:   cfg.EmbeddedSyncAlways,
		SyncInterval: cfg.EmbeddedSyncEvery,
	}
	if cfg.EmbeddedNATSAddr != "" {
		host, port, err := net.SplitHostPort(cfg.EmbeddedNATSAddr)
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

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
