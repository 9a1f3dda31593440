package natsembed_test

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/esimflow/esimflow/shared/certtest"
	"github.com/esimflow/esimflow/shared/config"
	"github.com/esimflow/esimflow/shared/natsconn"
	"github.com/esimflow/esimflow/shared/natsembed"
	"github.com/nats-io/nats.go"
)

func clientURL(t *testing.T, srv natsconn.EmbeddedServer) string {
	t.Helper()
	u, ok := srv.(interface{ ClientURL() string })
	if !ok {
		t.Fatalf("%T has no ClientURL", srv)
	}
	return u.ClientURL()
}

// TestSecurityEmbeddedNATSListenerRefusesAnonymousClients: with
// ESIMFLOW_EMBEDDED_NATS_ADDR set, an anonymous client can neither publish
// events past ingest nor read the contacts bucket: it is refused. A client
// with the seed generated (0600) into the data dir connects, the process's
// own in-process connection keeps working, and a restart keeps the seed.
func TestSecurityEmbeddedNATSListenerRefusesAnonymousClients(t *testing.T) {
	dir := t.TempDir()
	cfg := config.NATS{DataDir: dir, EmbeddedAddr: "127.0.0.1:-1"}
	srv, err := natsembed.Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	url := clientURL(t, srv)
	if nc, err := nats.Connect(url); err == nil {
		nc.Close()
		srv.Shutdown()
		t.Fatalf("an anonymous client connected to %s", url)
	}
	seed := filepath.Join(dir, natsembed.SeedFile)
	fi, err := os.Stat(seed)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("seed file %s: %v, mode %v; want 0600", seed, err, fi)
	}
	auth, err := nats.NkeyOptionFromSeed(seed)
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(url, auth)
	if err != nil {
		t.Fatalf("with the generated seed: %v", err)
	}
	nc.Close()
	srv.Shutdown()
	srv.WaitForShutdown()
	before, _ := os.ReadFile(seed)

	// The process's own connection, through natsconn, as `esimflow run`.
	conn, err := natsconn.Open(context.Background(), cfg, "test", slog.New(slog.NewTextHandler(io.Discard, nil)), natsembed.Start, false)
	if err != nil {
		t.Fatalf("in-process connection: %v", err)
	}
	defer conn.Close()
	if after, _ := os.ReadFile(seed); string(after) != string(before) {
		t.Error("a restart replaced the seed")
	}
	if nc, err := nats.Connect(clientURL(t, conn.Embedded)); err == nil {
		nc.Close()
		t.Error("after a restart an anonymous client connected")
	}
}

// TestSecurityEmbeddedNATSRefusesToListenBeyondLoopbackWithoutTLS: every
// interface (or any non-loopback address) needs TLS; with a certificate the
// listener speaks TLS only, and still needs the seed.
func TestSecurityEmbeddedNATSRefusesToListenBeyondLoopbackWithoutTLS(t *testing.T) {
	for _, addr := range []string{"0.0.0.0:-1", ":-1", "[::]:-1"} {
		srv, err := natsembed.Start(config.NATS{DataDir: t.TempDir(), EmbeddedAddr: addr})
		if err == nil {
			srv.Shutdown()
			t.Errorf("%s: started without TLS", addr)
		} else if !strings.Contains(err.Error(), "TLS") {
			t.Errorf("%s: %v; want an error naming TLS", addr, err)
		}
	}
	ca := certtest.NewCA(t, "embedded")
	cert := ca.Server("nats")
	dir := t.TempDir()
	srv, err := natsembed.StartWith(natsembed.Options{DataDir: dir, Addr: "0.0.0.0:-1", SyncAlways: true, TLSCert: cert.CertFile, TLSKey: cert.KeyFile})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(srv.Shutdown)
	url := strings.Replace(srv.ClientURL(), "0.0.0.0", "127.0.0.1", 1)
	auth, err := nats.NkeyOptionFromSeed(filepath.Join(dir, natsembed.SeedFile))
	if err != nil {
		t.Fatal(err)
	}
	if nc, err := nats.Connect(url, auth); err == nil {
		nc.Close()
		t.Error("a client without TLS connected")
	}
	if nc, err := nats.Connect(url, nats.RootCAs(ca.CertFile)); err == nil {
		nc.Close()
		t.Error("an anonymous TLS client connected")
	}
	nc, err := nats.Connect(url, auth, nats.RootCAs(ca.CertFile))
	if err != nil {
		t.Fatalf("TLS with the seed: %v", err)
	}
	nc.Close()
}
