// Package storeopen opens the store a process keeps its state in: Redis when
// ESIMFLOW_REDIS_URL is set (one node, or a Redis Cluster through go-redis's
// cluster client for redis+cluster://), else NATS KV. It is apart from package service so
// that only the processes that keep state (processor, notifier, the
// all-in-one, replay) link go-redis and the KV store; ingest does not.
package storeopen

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/url"
	"os"
	"strings"
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
	client, addr, err := Client(cfg)
	if err != nil {
		return nil, nil, err
	}
	close = func() { _ = client.Close() }
	pctx, cancel := context.WithTimeout(ctx, pingTimeout)
	defer cancel()
	if err := client.Ping(pctx).Err(); err != nil {
		close()
		return nil, nil, fmt.Errorf("redis %s: %w", addr, err)
	}
	rs, err := redisstore.New(client, redisstore.Options{Namespace: cfg.Namespace, SeenTTL: cfg.SeenTTL})
	if err != nil {
		close()
		return nil, nil, fmt.Errorf("redis store: %w", err)
	}
	return rs, close, nil
}

// Cluster URL schemes: every seed node in the host part, comma-separated.
const (
	schemeCluster    = "redis+cluster"
	schemeClusterTLS = "rediss+cluster"
)

// clusterReload is how often a cluster client reloads the slot layout.
// go-redis reloads it on MOVED, but not when a primary stops answering: with
// its default of a minute, a client would keep calling a dead primary for up
// to a minute after its replica took over.
const clusterReload = time.Second

// Client returns a client for ESIMFLOW_REDIS_URL and the address to name in
// errors: a Redis Cluster client for redis+cluster://host:port,host:port
// (rediss+cluster:// for TLS), else a single-node client. The caller closes it.
func Client(cfg config.Store) (redis.UniversalClient, string, error) {
	if IsCluster(cfg.URL) {
		copts, err := ClusterOptions(cfg)
		if err != nil {
			return nil, "", err
		}
		return redis.NewClusterClient(copts), strings.Join(copts.Addrs, ","), nil
	}
	ropts, err := RedisOptions(cfg)
	if err != nil {
		return nil, "", err
	}
	return redis.NewClient(ropts), ropts.Addr, nil
}

// IsCluster reports whether url names a Redis Cluster.
func IsCluster(url string) bool {
	return strings.HasPrefix(url, schemeCluster+"://") || strings.HasPrefix(url, schemeClusterTLS+"://")
}

// ClusterOptions turns a redis+cluster:// or rediss+cluster://
// ESIMFLOW_REDIS_URL — seeds comma-separated, the ACL user and password, the
// query options go-redis's ParseClusterURL knows — and the TLS files into
// cluster client options.
func ClusterOptions(cfg config.Store) (*redis.ClusterOptions, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("ESIMFLOW_REDIS_URL: %w", err)
	}
	if p := strings.Trim(u.Path, "/"); p != "" && p != "0" {
		return nil, fmt.Errorf("ESIMFLOW_REDIS_URL: a Redis Cluster has only database 0, not %q", p)
	}
	seeds := strings.Split(u.Host, ",")
	q := u.Query()
	for _, s := range seeds[1:] {
		q.Add("addr", s)
	}
	u.Scheme = strings.TrimSuffix(u.Scheme, "+cluster")
	u.Host, u.Path, u.RawQuery = seeds[0], "", q.Encode()
	copts, err := redis.ParseClusterURL(u.String())
	if err != nil {
		return nil, fmt.Errorf("ESIMFLOW_REDIS_URL: %w", err)
	}
	copts.ClusterStateReloadInterval = clusterReload
	if copts.TLSConfig != nil {
		if err := tlsFiles(cfg, copts.TLSConfig); err != nil {
			return nil, err
		}
	}
	return copts, nil
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
	if err := tlsFiles(cfg, ropts.TLSConfig); err != nil {
		return nil, err
	}
	return ropts, nil
}

// tlsFiles adds the CA and the client certificate of the Redis TLS settings
// to tc.
func tlsFiles(cfg config.Store, tc *tls.Config) error {
	if f := cfg.CAFile; f != "" {
		pem, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("ESIMFLOW_REDIS_TLS_CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return fmt.Errorf("ESIMFLOW_REDIS_TLS_CA: no PEM certificate in %s", f)
		}
		tc.RootCAs = pool
	}
	if cfg.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(cfg.CertFile, cfg.KeyFile)
		if err != nil {
			return fmt.Errorf("ESIMFLOW_REDIS_TLS_CERT: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return nil
}
