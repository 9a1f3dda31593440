// Package natsembed starts the nats-server that the all-in-one embeds: JetStream
// under ESIMFLOW_DATA_DIR, in-process connections only unless
// ESIMFLOW_EMBEDDED_NATS_ADDR asks it to listen, fsync before every ack unless
// ESIMFLOW_EMBEDDED_SYNC relaxes it. Only the all-in-one and the CLI link it.
//
// A listening server is never open: every client must authenticate with an
// nkey — the one whose seed is in <data dir>/embedded-nats.nk, generated
// (mode 0600) on the first start, or a seed file given — and beyond loopback
// the listener also needs TLS (a certificate and key), or the server does not
// start. The process's own in-process connection authenticates with the same
// seed (ConnectOptions).
package natsembed

import (
	"crypto/tls"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/esimflow/esimflow/shared/config"
	"github.com/esimflow/esimflow/shared/natsconn"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
)

var _ natsconn.StartEmbedded = Start

// SeedFile is the name, in the data dir, of the generated nkey seed that
// clients of a listening embedded server authenticate with
// (ESIMFLOW_NATS_NKEY, `nats --nkey`).
const SeedFile = "embedded-nats.nk"

// Options configure the embedded server.
type Options struct {
	DataDir string
	// Addr is the host:port to listen on; empty: in-process connections only.
	Addr string
	// SyncAlways fsyncs before every ack; otherwise every SyncEvery.
	SyncAlways bool
	SyncEvery  time.Duration
	// NkeyFile is the seed of the user clients authenticate as; empty: the
	// data dir's SeedFile, generated on first start.
	NkeyFile string
	// TLSCert and TLSKey are the listener's certificate and key (PEM files);
	// required when Addr is beyond loopback.
	TLSCert, TLSKey string
}

// Server is the running embedded server.
type Server struct {
	*server.Server
	seed string // nkey seed file the in-process connection uses; "" when not listening
}

// ConnectOptions are what an in-process connection needs: the nkey when the
// server listens (and so requires authentication).
func (s *Server) ConnectOptions() ([]nats.Option, error) {
	if s.seed == "" {
		return nil, nil
	}
	o, err := nats.NkeyOptionFromSeed(s.seed)
	if err != nil {
		return nil, fmt.Errorf("embedded nats nkey %s: %w", s.seed, err)
	}
	return []nats.Option{o}, nil
}

// Start starts the server from the configuration and waits until it takes
// connections.
func Start(cfg config.NATS) (natsconn.EmbeddedServer, error) {
	return StartWith(Options{DataDir: cfg.DataDir, Addr: cfg.EmbeddedAddr,
		SyncAlways: cfg.SyncEvery == 0, SyncEvery: cfg.SyncEvery,
		NkeyFile: cfg.EmbeddedNkeyFile, TLSCert: cfg.EmbeddedTLSCert, TLSKey: cfg.EmbeddedTLSKey})
}

// StartWith starts the server and waits until it takes connections.
func StartWith(o Options) (*Server, error) {
	opts := &server.Options{
		ServerName: "esimflow",
		JetStream:  true,
		StoreDir:   filepath.Join(o.DataDir, "jetstream"),
		DontListen: o.Addr == "",
		NoSigs:     true,
		NoLog:      true,
		// Durable by default: every ack follows an fsync, so an acked event
		// survives a power loss. An interval trades that for throughput.
		SyncAlways:   o.SyncAlways,
		SyncInterval: o.SyncEvery,
	}
	out := &Server{}
	if o.Addr != "" {
		host, port, err := net.SplitHostPort(o.Addr)
		if err != nil {
			return nil, fmt.Errorf("ESIMFLOW_EMBEDDED_NATS_ADDR: %w", err)
		}
		opts.Host = host
		if opts.Port, err = strconv.Atoi(port); err != nil {
			return nil, fmt.Errorf("ESIMFLOW_EMBEDDED_NATS_ADDR: port %q: %w", port, err)
		}
		if (o.TLSCert == "") != (o.TLSKey == "") {
			return nil, errors.New("embedded nats: TLS needs both a certificate and a key")
		}
		if o.TLSCert == "" && !loopback(host) {
			return nil, fmt.Errorf("embedded nats: listening on %s, beyond loopback, needs TLS (a certificate and key); "+
				"listen on 127.0.0.1 or give them", o.Addr)
		}
		if o.TLSCert != "" {
			cert, err := tls.LoadX509KeyPair(o.TLSCert, o.TLSKey)
			if err != nil {
				return nil, fmt.Errorf("embedded nats TLS: %w", err)
			}
			opts.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
			opts.TLS, opts.TLSTimeout = true, 2
		}
		seed := o.NkeyFile
		if seed == "" {
			seed = filepath.Join(o.DataDir, SeedFile)
			if err := ensureSeed(seed); err != nil {
				return nil, err
			}
		}
		pub, err := publicKey(seed)
		if err != nil {
			return nil, err
		}
		opts.Nkeys = []*server.NkeyUser{{Nkey: pub}}
		out.seed = seed
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
	out.Server = srv
	return out, nil
}

// ensureSeed writes a new user nkey seed to path, mode 0600, unless the
// file exists.
func ensureSeed(path string) error {
	if _, err := os.Stat(path); err == nil {
		return nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("embedded nats nkey: %w", err)
	}
	kp, err := nkeys.CreateUser()
	if err != nil {
		return fmt.Errorf("embedded nats nkey: %w", err)
	}
	seed, err := kp.Seed()
	if err != nil {
		return fmt.Errorf("embedded nats nkey: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("embedded nats nkey: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("embedded nats nkey: %w", err)
	}
	_, werr := f.Write(append(seed, '\n'))
	if err := errors.Join(werr, f.Close()); err != nil {
		return fmt.Errorf("embedded nats nkey %s: %w", path, err)
	}
	return nil
}

// publicKey reads a seed file and returns its user public key.
func publicKey(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("embedded nats nkey: %w", err)
	}
	kp, err := nkeys.ParseDecoratedNKey(b)
	if err != nil {
		return "", fmt.Errorf("embedded nats nkey %s: %w", path, err)
	}
	pub, err := kp.PublicKey()
	if err != nil || !nkeys.IsValidPublicUserKey(pub) {
		return "", fmt.Errorf("embedded nats nkey %s: not a user seed", path)
	}
	return pub, nil
}

// loopback reports whether host is this machine only: a loopback address or
// localhost. An empty host or 0.0.0.0 means every interface.
func loopback(host string) bool {
	if ip, err := netip.ParseAddr(host); err == nil {
		return ip.Unmap().IsLoopback()
	}
	return strings.EqualFold(host, "localhost")
}
