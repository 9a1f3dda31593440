package natsconn_test

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/esimflow/esimflow/shared/certtest"
	"github.com/esimflow/esimflow/shared/config"
	"github.com/esimflow/esimflow/shared/natsconn"
	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"
)

// startServer starts an in-process nats-server with JetStream, TLS from ca
// (client certificates required when verify), and what tune adds (users,
// nkeys, an operator). It returns its host:port.
func startServer(t *testing.T, ca *certtest.CA, verify bool, tune func(*server.Options)) string {
	t.Helper()
	cert := ca.Server("nats")
	tc := &tls.Config{Certificates: []tls.Certificate{cert.TLS}, MinVersion: tls.VersionTLS12}
	if verify {
		tc.ClientCAs, tc.ClientAuth = ca.Pool(), tls.RequireAndVerifyClientCert
	}
	opts := &server.Options{
		Host: "127.0.0.1", Port: server.RANDOM_PORT,
		JetStream: true, StoreDir: t.TempDir(),
		TLS: true, TLSVerify: verify, TLSConfig: tc, TLSTimeout: 5,
		NoLog: true, NoSigs: true,
	}
	tune(opts)
	srv, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("server not ready in 10s")
	}
	t.Cleanup(srv.Shutdown)
	return srv.Addr().String()
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func open(t *testing.T, env map[string]string) error {
	t.Helper()
	cfg, err := config.Load(func(k string) string { return env[k] })
	if err != nil {
		t.Fatalf("config: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := natsconn.Open(ctx, cfg.NATS, t.Name(), slog.New(slog.NewTextHandler(io.Discard, nil)), nil, false)
	if err != nil {
		return err
	}
	c.Close()
	return nil
}

func TestSecureConnections(t *testing.T) {
	ca := certtest.NewCA(t, "nats-test")
	other := certtest.NewCA(t, "someone-else")
	client := ca.Client("esimflow")

	// Password users on a TLS server that does not ask for client certificates.
	passwordAddr := startServer(t, ca, false, func(o *server.Options) {
		o.Users = []*server.User{{Username: "esim", Password: "s3cret-pw"}}
	})

	// An nkey user on a server that requires a client certificate.
	ukp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	upub, _ := ukp.PublicKey()
	useed, _ := ukp.Seed()
	nkeyAddr := startServer(t, ca, true, func(o *server.Options) {
		o.Nkeys = []*server.NkeyUser{{Nkey: upub}}
	})
	seedFile := writeFile(t, "user.nk", string(useed))

	// A server in operator mode, whose users log in with a credentials file.
	credsFile, operatorAddr := operatorMode(t, ca)

	tests := []struct {
		name    string
		env     map[string]string
		wantErr string // "" = connects, JetStream answers
	}{
		{"user and password in a tls:// URL, server checked against the CA",
			map[string]string{"ESIMFLOW_NATS_URL": "tls://esim:s3cret-pw@" + passwordAddr, "ESIMFLOW_NATS_TLS_CA": ca.CertFile}, ""},
		{"CA file alone upgrades a nats:// URL to TLS",
			map[string]string{"ESIMFLOW_NATS_URL": "nats://esim:s3cret-pw@" + passwordAddr, "ESIMFLOW_NATS_TLS_CA": ca.CertFile}, ""},
		{"wrong password",
			map[string]string{"ESIMFLOW_NATS_URL": "tls://esim:wrong-pw@" + passwordAddr, "ESIMFLOW_NATS_TLS_CA": ca.CertFile}, "Authorization Violation"},
		{"server certificate from an unknown CA",
			map[string]string{"ESIMFLOW_NATS_URL": "tls://esim:s3cret-pw@" + passwordAddr, "ESIMFLOW_NATS_TLS_CA": other.CertFile}, "certificate"},
		{"nkey seed file with a client certificate",
			map[string]string{"ESIMFLOW_NATS_URL": "tls://" + nkeyAddr, "ESIMFLOW_NATS_NKEY": seedFile,
				"ESIMFLOW_NATS_TLS_CA": ca.CertFile, "ESIMFLOW_NATS_TLS_CERT": client.CertFile, "ESIMFLOW_NATS_TLS_KEY": client.KeyFile}, ""},
		{"nkey seed file without the client certificate the server requires",
			map[string]string{"ESIMFLOW_NATS_URL": "tls://" + nkeyAddr, "ESIMFLOW_NATS_NKEY": seedFile, "ESIMFLOW_NATS_TLS_CA": ca.CertFile}, "connect nats"},
		{"credentials file on an operator-mode server",
			map[string]string{"ESIMFLOW_NATS_URL": "tls://" + operatorAddr, "ESIMFLOW_NATS_CREDS": credsFile, "ESIMFLOW_NATS_TLS_CA": ca.CertFile}, ""},
		{"missing credentials file is named",
			map[string]string{"ESIMFLOW_NATS_URL": "tls://" + operatorAddr, "ESIMFLOW_NATS_CREDS": "/nonexistent/user.creds", "ESIMFLOW_NATS_TLS_CA": ca.CertFile}, "ESIMFLOW_NATS_CREDS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := open(t, tt.env)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("Open: %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("Open: err = %v, want one containing %q", err, tt.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), "-pw") {
				t.Errorf("the password is in the error: %v", err)
			}
		})
	}
}

// operatorMode starts a server trusting a fresh operator, with a system
// account and one JetStream-enabled account, and writes a user's credentials
// file as `nsc` would.
func operatorMode(t *testing.T, ca *certtest.CA) (credsFile, addr string) {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	okp, err := nkeys.CreateOperator()
	must(err)
	opub, _ := okp.PublicKey()
	account := func(js bool) (nkeys.KeyPair, string, string) {
		kp, err := nkeys.CreateAccount()
		must(err)
		pub, _ := kp.PublicKey()
		ac := jwt.NewAccountClaims(pub)
		if js {
			ac.Limits.JetStreamLimits = jwt.JetStreamLimits{MemoryStorage: -1, DiskStorage: -1, Streams: -1, Consumer: -1}
		}
		token, err := ac.Encode(okp)
		must(err)
		return kp, pub, token
	}
	_, sysPub, sysJWT := account(false)
	akp, accPub, accJWT := account(true)
	oc := jwt.NewOperatorClaims(opub)
	oc.SystemAccount = sysPub
	opJWT, err := oc.Encode(okp)
	must(err)
	operator, err := jwt.DecodeOperatorClaims(opJWT)
	must(err)

	ukp, err := nkeys.CreateUser()
	must(err)
	upub, _ := ukp.PublicKey()
	uc := jwt.NewUserClaims(upub)
	userJWT, err := uc.Encode(akp)
	must(err)
	seed, _ := ukp.Seed()
	creds, err := jwt.FormatUserConfig(userJWT, seed)
	must(err)

	resolver := &server.MemAccResolver{}
	must(resolver.Store(sysPub, sysJWT))
	must(resolver.Store(accPub, accJWT))
	addr = startServer(t, ca, false, func(o *server.Options) {
		o.TrustedOperators = []*jwt.OperatorClaims{operator}
		o.SystemAccount = sysPub
		o.AccountResolver = resolver
	})
	return writeFile(t, "user.creds", string(creds)), addr
}
