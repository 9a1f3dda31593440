// Package storeopen opens the store a process keeps its state in: Redis when
// ESIMFLOW_REDIS_URL is set, else NATS KV. It is apart from package service so
// that only the processes that keep state (processor, notifier, the
// all-in-one, replay) link go-redis and the KV store; ingest does not.
package storeopen

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"time"

	"github.com/esimflow/esimflow/shared/config"
	"github.com/esimflow/esimflow/shared/store"
	"github.com/esimflow/esimflow/shared/store/kvstore"
	"github.com/esimflow/esimflow/shared/store/redisstore"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"
)

// pingTimeout bounds the first Redis round trip: a wrong address or
// password surfaces at start-up, not at the first event.
const pingTimeout = 5 * time.Second

// Open opens the store cfg names; js holds the NATS KV buckets when no Redis
// is configured. The caller closes the store with close once its users have
// stopped.
func Open(ctx context.Context, cfg config.Store, js jetstream.JetStream) (st store.Store, close func(), err error) {
	if cfg.URL == "" {
		kv, err := kvstore.New(ctx, js, kvstore.Options{Namespace: cfg.Namespace, SeenTTL: cfg.SeenTTL, Replicas: cfg.Replicas})
		if err != nil {
			return nil, nil, fmt.Errorf("nats kv store: %w", err)
		}
		return kv, func() {}, nil
	}
	ropts, err := RedisOptions(cfg)
	if err != nil {
		return nil, nil, err
	}
	client := redis.NewClient(ropts)
	close = func() { _ = client.Close() }
	pctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	if err := client.Ping(pctx).Err(); err != nil {
		close()
		return nil, nil, fmt.Errorf("redis %s: %w", ropts.Addr, err)
	}
	rs, err := redisstore.New(client, redisstore.Options{Namespace: cfg.Namespace, SeenTTL: cfg.SeenTTL})
	if err != nil {
		close()
		return nil, nil, fmt.Errorf("redis store: %w", err)
	}
	return rs, close, nil
}

// RedisOptions turns ESIMFLOW_REDIS_URL — with its ACL user and password, and
// rediss:// for TLS — and the Redis TLS files into client options.
func RedisOptions(cfg config.Store) (*redis.Options, error) {
	ropts, err := redis.ParseURL(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("ESIMFLOW_REDIS_URL: %w", err)
	}
	if ropts.TLSConfig == nil {
		return ropts, nil // Validate refuses TLS files without rediss://
	}
	if f := cfg.CAFile; f != "" {
		pem, err := os.ReadFile(f)
		if err != nil {
			return nil, fmt.Errorf("ESIMFLOW_REDIS_TLS_CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("ESIMFLOW_REDIS_TLS_CA: no PEM certificate in %s", f)
		}
		ropts.TLSConfig.RootCAs = pool
	}
	if cfg.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("ESIMFLOW_REDIS_TLS_CERT: %w", err)
		}
		ropts.TLSConfig.Certificates = []tls.Certificate{cert}
	}
	return ropts, nil
}
