package harness

import (
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/esimflow/esimflow/shared/stream"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// allInOneRun loads `esimflow run` (embedded NATS, NATS KV store) in its
// default durable mode and with fsync relaxed to 2m, then measures raw
// fsync-always JetStream publishing: the durable mode's ceiling.
func (h *Harness) allInOneRun(ctx context.Context) error {
	for _, mode := range []struct{ key, sync string }{{"aio.always", "always"}, {"aio.relaxed", "2m"}} {
		l, rss, err := h.allInOneLoad(ctx, mode.sync)
		if err != nil {
			return fmt.Errorf("all-in-one, sync %s: %w", mode.sync, err)
		}
		h.figs.add(mode.key+".rate", l.Rate)
		h.figs.add(mode.key+".p99", ms(l.P99))
		h.figs.add(mode.key+".rss", rss)
		h.progress("  all-in-one, sync %s: %.0f req/s, p99 %v, RSS %.1f MiB", mode.sync, l.Rate, l.P99, rss)
	}
	raw, err := h.rawFsyncPublish(ctx)
	if err != nil {
		return err
	}
	h.figs.add("rawfsync.rate", raw)
	h.figs.add("aio.ratio", ratio(h.last("aio.always.rate"), raw))
	h.progress("  raw fsync-always publish: %.0f msg/s", raw)
	return nil
}

func (h *Harness) allInOneLoad(ctx context.Context, sync string) (Load, float64, error) {
	dir, err := h.mkdir("allinone")
	if err != nil {
		return Load{}, 0, err
	}
	httpAddr, err := freeAddr()
	if err != nil {
		return Load{}, 0, err
	}
	adminAddr, err := freeAddr()
	if err != nil {
		return Load{}, 0, err
	}
	// No ESIMFLOW_NATS_URL or _REDIS_URL: the embedded server and NATS KV.
	env := append(h.ingestEnv(httpAddr, adminAddr),
		"ESIMFLOW_NATS_URL=", "ESIMFLOW_REDIS_URL=",
		"ESIMFLOW_DATA_DIR="+dir,
		"ESIMFLOW_EMBEDDED_SYNC="+sync,
	)
	p, err := StartQuiet(h.cfg.WorkDir, "esimflow-"+sync, filepath.Join(h.cfg.BinDir, "esimflow"), []string{"run"}, env)
	if err != nil {
		return Load{}, 0, err
	}
	defer p.Stop()
	if err := waitHTTP(ctx, p, "http://"+adminAddr+"/readyz"); err != nil {
		return Load{}, 0, err
	}
	_, bodies := h.namespace("aio")
	l := MaxLoad(ctx, h.signer.Targeter("http://"+httpAddr, bodies), h.cfg.Conns, h.cfg.Duration)
	u, err := p.Usage()
	if err != nil {
		return l, 0, err
	}
	if err := l.Err(); err != nil {
		return l, 0, err
	}
	return l, mib(u.HWM), nil
}

// rawFsyncPublish runs a nats-server in this process as the all-in-one embeds
// it (JetStream, fsync before every ack, in-process connection) and publishes
// ingest's messages to ESIM_EVENTS synchronously from as many publishers as the
// load generator has connections, for as long as an HTTP attack. It returns
// acked messages per second.
func (h *Harness) rawFsyncPublish(ctx context.Context) (float64, error) {
	dir, err := h.mkdir("rawfsync")
	if err != nil {
		return 0, err
	}
	srv, err := server.NewServer(&server.Options{
		ServerName: "esimbench", JetStream: true, StoreDir: dir,
		DontListen: true, NoSigs: true, NoLog: true, SyncAlways: true,
	})
	if err != nil {
		return 0, fmt.Errorf("raw fsync: server: %w", err)
	}
	go srv.Start()
	defer srv.Shutdown()
	if !srv.ReadyForConnections(30 * time.Second) {
		return 0, fmt.Errorf("raw fsync: server not ready after 30s")
	}
	nc, err := nats.Connect("", nats.InProcessServer(srv))
	if err != nil {
		return 0, fmt.Errorf("raw fsync: connect: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return 0, fmt.Errorf("raw fsync: jetstream: %w", err)
	}
	names, bodies := h.namespace("raw")
	if _, _, err := stream.Ensure(ctx, js, names, limits); err != nil {
		return 0, fmt.Errorf("raw fsync: streams: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, h.cfg.Duration)
	defer cancel()
	var (
		acked   atomic.Int64
		wg      sync.WaitGroup
		errOnce sync.Once
		perr    error
	)
	start := time.Now()
	for range h.cfg.Conns {
		wg.Go(func() {
			for ctx.Err() == nil {
				msg, key := ingestMsg(names, bodies.Next(), time.Now())
				if _, err := js.PublishMsg(ctx, msg, jetstream.WithMsgID(key)); err != nil {
					if ctx.Err() == nil {
						errOnce.Do(func() { perr = err })
					}
					return
				}
				acked.Add(1)
			}
		})
	}
	wg.Wait()
	if perr != nil {
		return 0, fmt.Errorf("raw fsync: publish: %w", perr)
	}
	return float64(acked.Load()) / time.Since(start).Seconds(), nil
}
