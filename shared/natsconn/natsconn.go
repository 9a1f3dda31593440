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
	"os"
	"path/filepath"
	"time"

	"github.com/esimflow/esimflow/shared/config"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// jetstreamTimeout is how long a JetStream request waits for its answer:
// jetstream's default for a synchronous one, which async publishes get too.
const jetstreamTimeout = 5 * time.Second

// Conn is an open NATS connection with its JetStream context, and the embedded
// server behind it when there is one.
type Conn struct {
	NC       *nats.Conn
	JS       jetstream.JetStream
	Embedded EmbeddedServer
}

// EmbeddedServer is an in-process nats-server, as natsembed starts it. It is
// an interface so that the service binaries, which always use an external
// NATS, do not link the server.
type EmbeddedServer interface {
	nats.InProcessConnProvider
	Shutdown()
	WaitForShutdown()
}

// authenticated is an embedded server that requires clients to
// authenticate: ConnectOptions are what the in-process connection needs.
type authenticated interface {
	ConnectOptions() ([]nats.Option, error)
}

// StartEmbedded starts the embedded server from the configuration.
type StartEmbedded func(cfg config.NATS) (EmbeddedServer, error)

// Open connects to cfg.URL, or, when it is empty, starts the embedded
// server with start (nil: an external NATS is required). name identifies the
// client in the server's monitoring.
//
// With wait, a NATS that does not answer yet is retried in the background
// (services); without, Open fails at once (operator commands).
func Open(ctx context.Context, cfg config.NATS, name string, log *slog.Logger, start StartEmbedded, wait bool) (*Conn, error) {
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
	url := cfg.URL
	if url != "" {
		sec, err := securityOptions(cfg)
		if err != nil {
			return nil, err
		}
		// A service started while NATS is down (restarting, or not up yet
		// beside it) keeps trying instead of exiting; the layout step waits.
		opts = append(opts, append(sec, nats.RetryOnFailedConnect(wait))...)
	}
	if url == "" {
		if start == nil {
			return nil, errors.New("ESIMFLOW_NATS_URL is required (the embedded server runs only in `esimflow run`)")
		}
		srv, err := start(cfg)
		if err != nil {
			return nil, err
		}
		c.Embedded = srv
		opts = append(opts, nats.InProcessServer(srv))
		if a, ok := srv.(authenticated); ok {
			// A listening embedded server requires authentication, of
			// in-process clients too.
			auth, err := a.ConnectOptions()
			if err != nil {
				c.Close()
				return nil, err
			}
			opts = append(opts, auth...)
		}
		log.Info("embedded nats started", "store", filepath.Join(cfg.DataDir, "jetstream"),
			"listen", orNone(cfg.EmbeddedAddr), "sync_always", cfg.SyncEvery == 0)
	}
	nc, err := nats.Connect(url, opts...)
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("connect nats %s: %w", orNone(config.RedactURLs(url)), err)
	}
	c.NC = nc
	// An async publish whose PubAck never comes (a reply lost without a
	// reconnect) fails after the time a synchronous one waits, rather than
	// stay pending: the processor awaits its intents' PubAcks together.
	js, err := jetstream.New(nc, jetstream.WithPublishAsyncTimeout(jetstreamTimeout))
	if err != nil {
		c.Close()
		return nil, fmt.Errorf("jetstream: %w", err)
	}
	c.JS = js
	// Commands fail at once when JetStream does not answer. Services do not
	// ask here: their connection may still be on its way (RetryOnFailedConnect),
	// or the cluster electing a leader, and the layout step that follows
	// retries for them (service.Open).
	if !wait {
		if _, err := js.AccountInfo(ctx); err != nil {
			c.Close()
			return nil, fmt.Errorf("jetstream not available on %s: %w", nc.ConnectedUrlRedacted(), err)
		}
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
func securityOptions(sec config.NATS) ([]nats.Option, error) {
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

func orNone(s string) string {
	if s == "" {
		return "none"
	}
	return s
}
