package harness

import (
	"bytes"
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"text/template"
	"time"

	"github.com/esimflow/esimflow/shared/stream"
	"github.com/nats-io/nats.go/jetstream"
	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// The Redpanda Connect peer (BENCH_PEERS=1): the same webhook pipeline as a
// stream-processor configuration, the do-it-yourself alternative a reseller
// would weigh against esimflow. Its ingest half is http_server →
// nats_jetstream with the same checks ingest makes (the token in the path, the
// Standard Webhooks signature and its timestamp) and the body's hash as
// Nats-Msg-Id; its processor half is nats_jetstream → dedupe (redis cache) →
// redis_hash, the tuned consumer's work. Both run as their own process,
// measured from /proc like esimflow's.

// connectIngest is the ingest half's configuration. The signature is checked
// in Bloblang; a message that fails it is rejected, which http_server answers
// with an error status, as ingest answers 401.
var connectIngest = template.Must(template.New("ingest").Parse(`http:
  address: {{.HTTPAddr}}
logger:
  level: WARN
input:
  http_server:
    address: {{.Addr}}
    path: /webhooks/esim/{{.Token}}
    allowed_verbs: [POST]
    sync_response:
      status: "200"
pipeline:
  processors:
    - mapping: |
        let signed = meta("Webhook-Id") + "." + meta("Webhook-Timestamp") + "." + content().string()
        let want = "v1," + $signed.hash("hmac_sha256", "{{.Key}}").encode("base64")
        root = if meta("Webhook-Signature") != $want {
          throw("signature refused")
        } else if (meta("Webhook-Timestamp").number() - timestamp_unix()).abs() > 300 {
          throw("timestamp outside the tolerance")
        } else {
          content()
        }
output:
  switch:
    cases:
      - check: errored()
        output:
          reject: "${! error() }"
      - output:
          nats_jetstream:
            urls: [{{.NATSURL}}]
            subject: '{{.SubjectPrefix}}${! json("eventType").or("unknown").lowercase() }'
            headers:
              Nats-Msg-Id: '${! content().hash("sha256").encode("hex") }'
            max_in_flight: 256
`))

// connectProcessor is the processor half's configuration: it binds to a push
// consumer the harness made, so the drain can be watched from before it
// starts.
var connectProcessor = template.Must(template.New("processor").Parse(`http:
  address: {{.HTTPAddr}}
logger:
  level: WARN
input:
  nats_jetstream:
    urls: [{{.NATSURL}}]
    stream: {{.Stream}}
    durable: {{.Durable}}
    bind: true
cache_resources:
  - label: seen
    redis:
      url: {{.RedisURL}}
      prefix: '{{.KeyPrefix}}seen:'
      default_ttl: 168h
pipeline:
  processors:
    - dedupe:
        cache: seen
        key: '${! meta("Nats-Msg-Id") }'
output:
  redis_hash:
    url: {{.RedisURL}}
    key: '{{.KeyPrefix}}state:${! meta("Nats-Msg-Id") }'
    fields:
      subject: '${! meta("nats_subject") }'
      event: '${! content() }'
    max_in_flight: 64
`))

type connectConf struct {
	HTTPAddr, Addr, Token, Key, NATSURL, SubjectPrefix string
	Stream, Durable, RedisURL, KeyPrefix               string
}

// connectConsumer is the push consumer the processor half binds to, with the
// settings its nats_jetstream input asks for (it refuses a consumer whose ack
// wait or pending limit differ from its own).
const connectConsumer = "connect"

// buildConnect builds bench/connectpeer into the bin directory unless a build
// newer than its sources is there; it returns the binary, or "" and why not.
func (h *Harness) buildConnect(ctx context.Context) (bin, why string) {
	if !h.cfg.Peers {
		return "", "not run: BENCH_PEERS=1 runs it"
	}
	src := h.cfg.ConnectDir
	bin = filepath.Join(h.cfg.BinDir, "connectpeer")
	if fresh(bin, filepath.Join(src, "go.mod"), filepath.Join(src, "go.sum"), filepath.Join(src, "main.go")) {
		return bin, ""
	}
	h.progress("building the Connect peer from the Go module proxy (bench/connectpeer; the first build takes minutes)")
	ctx, cancel := context.WithTimeout(ctx, 20*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, ".")
	cmd.Dir = src
	// Its own module, outside the workspace: its dependencies must not move
	// the versions esimflow builds with.
	cmd.Env = append(os.Environ(), "GOWORK=off", "GOFLAGS=-mod=readonly")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Sprintf("the Connect peer did not build: %v: %s", err, lastLine(out))
	}
	return bin, ""
}

// fresh says whether target exists and is newer than every source.
func fresh(target string, sources ...string) bool {
	t, err := os.Stat(target)
	if err != nil {
		return false
	}
	for _, s := range sources {
		st, err := os.Stat(s)
		if err != nil || st.ModTime().After(t.ModTime()) {
			return false
		}
	}
	return true
}

// peerRun loads the Connect ingest the way ingest was loaded in this run, then
// lets the Connect processor drain a backlog as the processor did.
func (h *Harness) peerRun(ctx context.Context) error {
	if h.connect == "" {
		return nil
	}
	if err := h.connectIngestLoad(ctx); err != nil {
		return fmt.Errorf("connect ingest: %w", err)
	}
	if err := h.connectDrain(ctx); err != nil {
		return fmt.Errorf("connect processor: %w", err)
	}
	return nil
}

// startConnect starts the peer on a configuration and waits for its /ready.
func (h *Harness) startConnect(ctx context.Context, name string, tmpl *template.Template, conf connectConf) (*Process, error) {
	path, httpAddr, err := h.writeConnectConf(name, tmpl, conf)
	if err != nil {
		return nil, err
	}
	p, err := Start(h.cfg.WorkDir, name, h.connect, []string{"-c", path}, nil)
	if err != nil {
		return nil, err
	}
	if err := waitHTTP(ctx, p, "http://"+httpAddr+"/ready"); err != nil {
		p.Stop()
		return nil, err
	}
	return p, nil
}

// writeConnectConf writes a configuration, its own HTTP server (for /ready)
// on a free port; it returns the file and that address.
func (h *Harness) writeConnectConf(name string, tmpl *template.Template, conf connectConf) (path, httpAddr string, err error) {
	if conf.HTTPAddr, err = freeAddr(); err != nil {
		return "", "", err
	}
	var b bytes.Buffer
	if err := tmpl.Execute(&b, conf); err != nil {
		return "", "", fmt.Errorf("%s config: %w", name, err)
	}
	path = filepath.Join(h.cfg.WorkDir, name+".yaml")
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		return "", "", fmt.Errorf("%s config: %w", name, err)
	}
	return path, conf.HTTPAddr, nil
}

func (h *Harness) connectIngestLoad(ctx context.Context) error {
	names, bodies := h.namespace("peer")
	defer h.dropNamespace(context.WithoutCancel(ctx), names)
	if _, _, err := stream.Ensure(ctx, h.js, names, limits); err != nil {
		return fmt.Errorf("streams: %w", err)
	}
	p, url, err := h.startConnectIngest(ctx, names)
	if err != nil {
		return err
	}
	defer p.Stop()
	before, err := p.Usage()
	if err != nil {
		return err
	}
	l := MaxLoad(ctx, identity(h.signer.Targeter(url, bodies)), h.cfg.Conns, h.cfg.Duration)
	after, err := p.Usage()
	if err != nil {
		return err
	}
	if err := l.Err(); err != nil {
		return err
	}
	answered := float64(l.Requests) * l.Success
	// Every request answered 200 must be an event in the stream, or the
	// figure measures something cheaper than ingest's work.
	s, err := h.js.Stream(ctx, names.Stream(stream.Events))
	if err != nil {
		return err
	}
	info, err := s.Info(ctx)
	if err != nil {
		return err
	}
	if float64(info.State.Msgs) < answered-0.5 {
		return fmt.Errorf("%.0f requests answered 200, %d events in the stream", answered, info.State.Msgs)
	}
	h.figs.add("connect.ingest.rate", l.Rate)
	h.figs.add("connect.ingest.cpu", perOp(after.CPU-before.CPU, answered))
	h.figs.add("connect.ingest.ratio", ratio(h.last("ingest.rate"), l.Rate))
	h.progress("  connect ingest: %.0f req/s, p99 %v", l.Rate, l.P99)
	return nil
}

// identity asks for uncompressed answers. Go's client (and so the load
// generator) otherwise accepts gzip, and Benthos v4.27's http_server then
// compresses even an empty answer with a fresh compressor (about a megabyte
// allocated per request, most of its CPU); esimflow's ingest and the other
// servers never compress, so only this peer's figure would carry that cost:
// one of that version's handler, not of the pipeline it is compared for.
func identity(tr vegeta.Targeter) vegeta.Targeter {
	return func(t *vegeta.Target) error {
		if err := tr(t); err != nil {
			return err
		}
		t.Header.Set("Accept-Encoding", "identity")
		return nil
	}
}

// startConnectIngest starts the ingest half on the namespace's event
// subjects, configured with the signer's token and key; it returns its base URL.
func (h *Harness) startConnectIngest(ctx context.Context, names stream.Names) (*Process, string, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, "", err
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(h.signer.Secret, "whsec_"))
	if err != nil {
		return nil, "", fmt.Errorf("signing key: %w", err)
	}
	// The key goes into a Bloblang string literal: the harness's is plain ASCII.
	if strings.ContainsAny(string(key), "\"\\\n") {
		return nil, "", fmt.Errorf("signing key %q cannot be written into the config", key)
	}
	p, err := h.startConnect(ctx, "connect-ingest-"+names.Namespace(), connectIngest, connectConf{
		Addr: addr, Token: h.signer.Token, Key: string(key), NATSURL: h.infra.NATSURL,
		SubjectPrefix: strings.TrimSuffix(names.EventSubject("x"), "x"),
	})
	if err != nil {
		return nil, "", err
	}
	return p, "http://" + addr, nil
}

func (h *Harness) connectDrain(ctx context.Context) error {
	names, bodies := h.namespace("peerdrain")
	defer h.dropNamespace(context.WithoutCancel(ctx), names)
	if _, _, err := stream.Ensure(ctx, h.js, names, limits); err != nil {
		return fmt.Errorf("streams: %w", err)
	}
	durable := names.Consumer(connectConsumer)
	if _, err := h.js.CreateOrUpdatePushConsumer(ctx, names.Stream(stream.Events), jetstream.ConsumerConfig{
		Durable:        durable,
		DeliverSubject: names.Namespace() + ".connect.deliver",
		DeliverPolicy:  jetstream.DeliverAllPolicy,
		AckPolicy:      jetstream.AckExplicitPolicy,
		AckWait:        30 * time.Second,
		MaxAckPending:  1024,
	}); err != nil {
		return fmt.Errorf("consumer: %w", err)
	}
	if err := h.publishBacklog(ctx, names, bodies, h.cfg.Backlog); err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	prefix := "connect:" + names.Namespace() + ":"
	// Started before the watch and not waited for: the watch's last poll
	// that sees the whole backlog reads its CPU, so its start-up, longer than
	// the processor's, is left out.
	confPath, httpAddr, err := h.writeConnectConf("connect-processor-"+names.Namespace(), connectProcessor, connectConf{
		NATSURL: h.infra.NATSURL, Stream: names.Stream(stream.Events), Durable: durable,
		RedisURL: h.infra.RedisURL, KeyPrefix: prefix,
	})
	if err != nil {
		return err
	}
	p, err := Start(h.cfg.WorkDir, "connect-processor-"+names.Namespace(), h.connect, []string{"-c", confPath}, nil)
	if err != nil {
		return err
	}
	defer p.Stop()
	var before Usage
	var beforeErr error
	watch := h.drainWatchFrom(ctx, names.Stream(stream.Events), durable, uint64(h.cfg.Backlog),
		func() { before, beforeErr = p.Usage() })
	if err := waitHTTP(ctx, p, "http://"+httpAddr+"/ready"); err != nil {
		return err
	}
	res := <-watch
	if res.err != nil {
		return res.err
	}
	after, err := p.Usage()
	if err != nil {
		return err
	}
	if beforeErr != nil {
		return beforeErr
	}
	// Each event leaves a seen mark and a hash: both must be there.
	keys, err := h.rdb.DBSize(ctx).Result()
	if err != nil {
		return err
	}
	if want := int64(2 * h.cfg.Backlog); keys != want {
		return fmt.Errorf("redis holds %d keys after the drain, want %d (a seen mark and a hash per event)", keys, want)
	}
	n := float64(h.cfg.Backlog)
	rate := n / res.elapsed.Seconds()
	h.figs.add("connect.proc.rate", rate)
	h.figs.add("connect.proc.cpu", perOp(after.CPU-before.CPU, n))
	h.figs.add("connect.proc.ratio", ratio(h.last("processor.rate"), rate))
	h.progress("  connect processor: %.0f events/s", rate)
	return nil
}
