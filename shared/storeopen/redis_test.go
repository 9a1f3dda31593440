package storeopen_test

import (
	"context"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/esimflow/esimflow/shared/certtest"
	"github.com/esimflow/esimflow/shared/config"
	"github.com/esimflow/esimflow/shared/poll"
	"github.com/esimflow/esimflow/shared/storeopen"
	"github.com/redis/go-redis/v9"
)

// startTLSRedis runs this machine's redis-server on a free loopback port with
// TLS only, client certificates required, and an ACL user "esim". It skips
// the test when redis-server is missing or was built without TLS.
func startTLSRedis(t *testing.T, ca *certtest.CA) string {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server is not installed: no TLS Redis to test against")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_, port, _ := net.SplitHostPort(addr)
	ln.Close()
	srv := ca.Server("redis")
	dir := t.TempDir()
	// Each --directive takes the words up to the next one, as a config line.
	cmd := exec.Command(bin,
		"--port", "0", "--tls-port", port, "--bind", "127.0.0.1",
		"--tls-cert-file", srv.CertFile, "--tls-key-file", srv.KeyFile, "--tls-ca-cert-file", ca.CertFile,
		"--tls-auth-clients", "yes",
		"--save", "", "--appendonly", "no", "--dir", dir, "--logfile", filepath.Join(dir, "redis.log"),
		"--user", "default", "off",
		"--user", "esim", "on", ">s3cret-pw", "~*", "+@all",
	)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start redis-server: %v", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
	})
	poll.Until(t, "redis-server listening on "+addr, func() bool {
		select {
		case err := <-exited:
			if strings.Contains(out.String(), "tls") || strings.Contains(out.String(), "TLS") {
				t.Skipf("redis-server has no TLS support: %v: %s", err, out.String())
			}
			t.Fatalf("redis-server exited: %v: %s", err, out.String())
		default:
		}
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err == nil
	}, poll.Timeout(10*time.Second))
	return addr
}

func TestRedisTLSAndACL(t *testing.T) {
	ca := certtest.NewCA(t, "redis-test")
	addr := startTLSRedis(t, ca)
	client := ca.Client("esimflow")
	other := certtest.NewCA(t, "someone-else")
	url := func(user, pw string) string { return fmt.Sprintf("rediss://%s:%s@%s/0", user, pw, addr) }

	tests := []struct {
		name    string
		env     map[string]string
		wantErr string // "" = PING answers
	}{
		{"ACL user, CA and client certificate", map[string]string{
			"ESIMFLOW_REDIS_URL": url("esim", "s3cret-pw"), "ESIMFLOW_REDIS_TLS_CA": ca.CertFile,
			"ESIMFLOW_REDIS_TLS_CERT": client.CertFile, "ESIMFLOW_REDIS_TLS_KEY": client.KeyFile}, ""},
		{"wrong password", map[string]string{
			"ESIMFLOW_REDIS_URL": url("esim", "wrong-pw"), "ESIMFLOW_REDIS_TLS_CA": ca.CertFile,
			"ESIMFLOW_REDIS_TLS_CERT": client.CertFile, "ESIMFLOW_REDIS_TLS_KEY": client.KeyFile}, "WRONGPASS"},
		{"no client certificate", map[string]string{
			// Under TLS 1.3 the server refuses after the client's handshake
			// ends: the client reads the alert, or finds the connection reset.
			"ESIMFLOW_REDIS_URL": url("esim", "s3cret-pw"), "ESIMFLOW_REDIS_TLS_CA": ca.CertFile}, "certificate|connection reset|broken pipe|EOF"},
		{"server certificate from an unknown CA", map[string]string{
			"ESIMFLOW_REDIS_URL": url("esim", "s3cret-pw"), "ESIMFLOW_REDIS_TLS_CA": other.CertFile,
			"ESIMFLOW_REDIS_TLS_CERT": client.CertFile, "ESIMFLOW_REDIS_TLS_KEY": client.KeyFile}, "certificate"},
		{"system roots do not know a private CA", map[string]string{
			"ESIMFLOW_REDIS_URL":      url("esim", "s3cret-pw"),
			"ESIMFLOW_REDIS_TLS_CERT": client.CertFile, "ESIMFLOW_REDIS_TLS_KEY": client.KeyFile}, "certificate"},
		{"CA file that is not PEM", map[string]string{
			"ESIMFLOW_REDIS_URL": url("esim", "s3cret-pw"), "ESIMFLOW_REDIS_TLS_CA": client.KeyFile}, "ESIMFLOW_REDIS_TLS_CA"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := config.Load(func(k string) string { return tt.env[k] })
			if err != nil {
				t.Fatalf("config: %v", err)
			}
			err = ping(t, cfg)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("ping: %v", err)
			case tt.wantErr != "" && (err == nil || !containsAny(err.Error(), strings.Split(tt.wantErr, "|"))):
				t.Fatalf("ping: err = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func ping(t *testing.T, cfg config.Config) error {
	t.Helper()
	opts, err := storeopen.RedisOptions(cfg.Store)
	if err != nil {
		return err
	}
	opts.MaxRetries = -1
	c := redis.NewClient(opts)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	return c.Ping(ctx).Err()
}

func TestRedisTLSSettingsNeedRediss(t *testing.T) {
	_, err := config.Load(func(k string) string {
		return map[string]string{"ESIMFLOW_REDIS_URL": "redis://127.0.0.1:6379", "ESIMFLOW_REDIS_TLS_CA": "/ca.pem"}[k]
	})
	if err == nil || !strings.Contains(err.Error(), "rediss://") {
		t.Errorf("err = %v, want one asking for rediss://", err)
	}
}

func containsAny(s string, subs []string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}
