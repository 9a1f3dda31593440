package harness

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"time"

	"github.com/esimflow/esimflow/bench/report"
	"github.com/nats-io/nats-server/v2/server"
)

// rows lists the table: figure key, stage, what, unit, note.
var rows = []struct{ key, group, name, unit, note string }{
	{"baseline.rate", "baseline handler", "req/s at 64 connections", "req/s", "net/http, json.Valid, JetStream publish with Nats-Msg-Id, PubAck awaited"},
	{"baseline.p99", "baseline handler", "p99", "ms", ""},
	{"baseline.half.p99", "baseline handler", "p99 at half its rate", "ms", "the floor the generator and shared cores allow at that rate; in slices alternating with ingest's"},
	{"ingest.rate", "ingest", "req/s at 64 connections", "req/s", "token, Standard Webhooks signature and allowlist checked"},
	{"ingest.ratio", "ingest", "ingest ÷ baseline handler", "×", "per run"},
	{"ingest.p50", "ingest", "p50 at full load", "ms", ""},
	{"ingest.p99", "ingest", "p99 at full load", "ms", ""},
	{"ingest.p999", "ingest", "p99.9 at full load", "ms", ""},
	{"ingest.cpu", "ingest", "CPU per request", "µs", "user+system of the ingest process ÷ requests"},
	{"ingest.rss", "ingest", "peak RSS under full load", "MiB", "VmHWM"},
	{"ingest.allcpu", "ingest", "CPU per request, every process", "µs", "ingest + nats-server + the load generator ÷ requests: what the pipeline's CPU per event (its rows) compares with"},
	{"ingest.half.rate", "ingest", "offered rate, half the baseline's", "req/s", ""},
	{"ingest.half.p50", "ingest", "p50 at half the baseline's rate", "ms", ""},
	{"ingest.half.p99", "ingest", "p99 at half the baseline's rate", "ms", ""},
	{"ingest.half.p999", "ingest", "p99.9 at half the baseline's rate", "ms", ""},
	{"ingest.half.p99ratio", "ingest", "p99 at half the baseline's rate ÷ the baseline's", "×", "alternating one-second slices of the two; the median over the pairs of slices of each pair's ratio"},
	{"ingest.half.cpu", "ingest", "CPU per request at half the baseline's rate", "µs", "as at full load: the same work with fewer requests to share each wake-up, read and write"},
	{"express.rate", "Express handler", "req/s at 64 connections", "req/s", "express.json(), answers 200, stores nothing"},
	{"express.p99", "Express handler", "p99", "ms", ""},
	{"express.ratio", "ingest", "ingest ÷ Express handler", "×", "per run"},
	{"tuned.rate", "tuned consumer", "backlog drain", "events/s", "Fetch(256) → one pipelined Lua SET NX + HSET per event → ack, 2 workers"},
	{"tuned.cpu", "tuned consumer", "CPU per event", "µs", "the harness process (Redis not counted)"},
	{"tuned.nats", "tuned consumer", "CPU per event, NATS", "µs", "nats-server over the drain"},
	{"tuned.redis", "tuned consumer", "CPU per event, Redis", "µs", "redis-server over the drain"},
	{"tuned.all", "tuned consumer", "CPU per event, consumer + NATS + Redis", "µs", "what one event costs the cores the consumers share"},
	{"processor.rate", "processor", "backlog drain, Redis store", "events/s", "bin/processor, default settings"},
	{"processor.cpu", "processor", "CPU per event", "µs", "the processor process, start-up included (Redis not counted)"},
	{"processor.rss", "processor", "peak RSS, backlog drain", "MiB", "VmHWM"},
	{"processor.nats", "processor", "CPU per event, NATS", "µs", "nats-server over the drain: deliveries and acks as the tuned consumer's, and the intents' publishes and the wake-ups"},
	{"processor.redis", "processor", "CPU per event, Redis", "µs", "redis-server over the drain"},
	{"processor.all", "processor", "CPU per event, processor + NATS + Redis", "µs", "÷ the tuned consumer's row is about the inverse of the drain ratio when the cores are busy"},
	{"processor.ratio", "processor", "processor ÷ tuned consumer", "×", "per run"},
	{"scale1.rate", "processor scaling", "1 instance: backlog drain", "events/s", "bin/processor processes on the one durable consumer, Redis store, start-up left out"},
	{"scale1.cpu", "processor scaling", "1 instance: CPU per event, processors", "µs", ""},
	{"scale1.nats", "processor scaling", "1 instance: CPU per event, NATS", "µs", "nats-server over the drain"},
	{"scale1.redis", "processor scaling", "1 instance: CPU per event, Redis", "µs", "redis-server over the drain"},
	{"scale1.cores", "processor scaling", "1 instance: cores busy, processors + NATS + Redis", "cores", "their CPU ÷ drain time"},
	{"scale1.machine", "processor scaling", "1 instance: cores busy, whole machine", "cores", "every process on the machine, from /proc/stat"},
	{"scale2.rate", "processor scaling", "2 instances: backlog drain", "events/s", ""},
	{"scale2.cpu", "processor scaling", "2 instances: CPU per event, processors", "µs", "both together"},
	{"scale2.nats", "processor scaling", "2 instances: CPU per event, NATS", "µs", ""},
	{"scale2.redis", "processor scaling", "2 instances: CPU per event, Redis", "µs", ""},
	{"scale2.cores", "processor scaling", "2 instances: cores busy, processors + NATS + Redis", "cores", ""},
	{"scale2.machine", "processor scaling", "2 instances: cores busy, whole machine", "cores", ""},
	{"scale3.rate", "processor scaling", "3 instances: backlog drain", "events/s", ""},
	{"scale3.cpu", "processor scaling", "3 instances: CPU per event, processors", "µs", "the three together"},
	{"scale3.nats", "processor scaling", "3 instances: CPU per event, NATS", "µs", ""},
	{"scale3.redis", "processor scaling", "3 instances: CPU per event, Redis", "µs", ""},
	{"scale3.cores", "processor scaling", "3 instances: cores busy, processors + NATS + Redis", "cores", ""},
	{"scale3.machine", "processor scaling", "3 instances: cores busy, whole machine", "cores", "where the curve flattens and why: the notes"},
	{"pipeline.rate", "whole pipeline", "highest rate held, lag not growing", "req/s", "ingest + processor + notifier (console to the null device), Redis store"},
	{"pipeline.ratio", "whole pipeline", "pipeline ÷ ingest alone", "×", "per run"},
	{"stage.ingest", "whole pipeline", "CPU per event: ingest", "µs", "user+system over the highest step held ÷ events answered in it; at a low held rate each batch, wake-up and round trip carries fewer events, so the figure is higher than at a high one"},
	{"stage.processor", "whole pipeline", "CPU per event: processor", "µs", "same step"},
	{"stage.notifier", "whole pipeline", "CPU per event: notifier", "µs", "same step; console channel to the null device"},
	{"stage.nats", "whole pipeline", "CPU per event: NATS", "µs", "same step; nats-server, R1, file store (ESIM_EVENTS, ESIM_NOTIFY, consumers' acks)"},
	{"stage.redis", "whole pipeline", "CPU per event: Redis", "µs", "same step; redis-server, no persistence"},
	{"stage.total", "whole pipeline", "CPU per event: the five together", "µs", "ingest + processor + notifier + NATS + Redis"},
	{"stage.percore", "whole pipeline", "events/s per core, from the five together", "events/s", "1 s ÷ the row above: what one core carries with nothing else on it"},
	{"stage.idle", "whole pipeline", "idle CPU of the five together, before the steps", "ms/s", "CPU each second with no load (per process: the notes); in every CPU-per-event row above, divided by the held rate"},
	{"stage.loadgen", "whole pipeline", "CPU per event: the load generator", "µs", "the harness process (vegeta, signing) on the same cores, not part of esimflow"},
	{"stage.all", "whole pipeline", "CPU per event, every process", "µs", "the five and the generator; ÷ ingest's CPU per request, every process, is the ratio the shared cores allow the pipeline at these costs"},
	{"stage.cores", "whole pipeline", "cores busy at the highest rate held: the five and the generator", "cores", "their CPU ÷ the step's time; near the machine's cores, the pipeline is bound by CPU it shares, not by a wait"},
	{"stage.machine", "whole pipeline", "cores busy at the highest rate held: whole machine", "cores", "every process, from /proc/stat"},
	{"wake.aio.contact.p50", "waiting message", "all-in-one, contact last: p50", "ms", "from the contact's PUT to the mail at the SMTP server, the activation waiting for it (retries minutes apart: a wake-up sent it)"},
	{"wake.aio.contact.p99", "waiting message", "all-in-one, contact last: p99", "ms", ""},
	{"wake.aio.link.p50", "waiting message", "all-in-one, order link last: p50", "ms", "from posting the ORDER_STATUS to ingest (its merge and the wake-up included) to the mail"},
	{"wake.aio.link.p99", "waiting message", "all-in-one, order link last: p99", "ms", ""},
	{"wake.svc.contact.p50", "waiting message", "services, contact last: p50", "ms", "ingest, processor, notifier processes, Redis store, the harness's NATS"},
	{"wake.svc.contact.p99", "waiting message", "services, contact last: p99", "ms", ""},
	{"wake.svc.link.p50", "waiting message", "services, order link last: p50", "ms", ""},
	{"wake.svc.link.p99", "waiting message", "services, order link last: p99", "ms", ""},
	{"aio.always.rate", "all-in-one", "req/s, ESIMFLOW_EMBEDDED_SYNC=always", "req/s", "embedded NATS, NATS KV store, processor and notifier running"},
	{"aio.always.p99", "all-in-one", "p99, sync always", "ms", ""},
	{"aio.always.rss", "all-in-one", "peak RSS, sync always", "MiB", "VmHWM"},
	{"aio.relaxed.rate", "all-in-one", "req/s, ESIMFLOW_EMBEDDED_SYNC=2m", "req/s", ""},
	{"aio.relaxed.p99", "all-in-one", "p99, sync 2m", "ms", ""},
	{"aio.relaxed.rss", "all-in-one", "peak RSS, sync 2m", "MiB", "VmHWM"},
	{"rawfsync.rate", "raw JetStream", "fsync-always sync publish, 64 publishers", "msg/s", "nats-server embedded in the harness, in-process connection"},
	{"aio.ratio", "all-in-one", "durable all-in-one ÷ raw fsync publish", "×", "per run"},
	{"connect.ingest.rate", "Connect peer", "ingest: req/s at 64 connections", "req/s", "http_server → nats_jetstream (Nats-Msg-Id: the body's SHA-256), token and Standard Webhooks signature checked in Bloblang; Accept-Encoding: identity (its handler gzips every answer otherwise)"},
	{"connect.ingest.cpu", "Connect peer", "ingest: CPU per request", "µs", "its process ÷ requests, as ingest's"},
	{"connect.ingest.ratio", "ingest", "ingest ÷ Connect ingest", "×", "per run"},
	{"connect.proc.rate", "Connect peer", "processor: backlog drain", "events/s", "nats_jetstream (push consumer, 1024 pending) → dedupe (redis cache) → redis_hash"},
	{"connect.proc.cpu", "Connect peer", "processor: CPU per event", "µs", "its process, start-up left out (Redis not counted)"},
	{"connect.proc.ratio", "processor", "processor ÷ Connect processor", "×", "per run; the processor's backlog drain row"},
}

func (h *Harness) document(ctx context.Context, micro []report.Micro) report.Document {
	mode := fmt.Sprintf("%d runs of each figure", h.cfg.Runs)
	if h.cfg.Quick {
		mode = "BENCH_QUICK: 1 run, short durations, small backlog — a smoke pass, not figures to quote"
	}
	d := report.Document{
		Title:   "esimflow benchmark, " + time.Now().UTC().Format("2006-01-02 15:04 UTC"),
		Machine: h.machine(ctx),
		Setup: []string{
			mode + ".",
			fmt.Sprintf("HTTP: vegeta, %d connections, %v per attack at full speed (a worker sends when its last request is answered); the same signed, distinct 190–250-byte bodies (the provider docs' examples with the ICCID, order and timestamp varied) for every server.", h.cfg.Conns, h.cfg.Duration),
			fmt.Sprintf("Drain: a backlog of %d events published as ingest publishes them; each consumer drains it from the same stream. Pipeline: constant-rate steps of %v.", h.cfg.Backlog, h.cfg.Hold),
			"Everything — load generator, servers, NATS, Redis — shares this machine's cores, so figures are ratios within one run.",
		},
	}
	for _, r := range rows {
		row := report.Row{Group: r.group, Name: r.name, Unit: r.unit, Values: h.figs[r.key], Note: r.note}
		if strings.HasPrefix(r.key, "express.") && h.express == "" {
			row.Note = h.noExpr
		}
		if strings.HasPrefix(r.key, "connect.") && h.connect == "" {
			row.Note = h.noConn
		}
		d.Rows = append(d.Rows, row)
	}
	med := func(key string) float64 { return report.Summarize(h.figs[key]).Median }
	d.Goals = []report.Goal{
		{Name: "ingest req/s ≥ 0.95 × the baseline handler", Value: med("ingest.ratio"), Target: 0.95, Unit: "×"},
		{Name: "ingest p99 at half the baseline's rate < 10 ms", Value: med("ingest.half.p99"), Target: 10, AtMost: true, Unit: "ms"},
		{Name: "ingest p99 at half the baseline's rate within 10 % of the baseline's", Value: med("ingest.half.p99ratio"), Target: 1.1, AtMost: true, Unit: "×"},
		{Name: "ingest req/s ≥ 3.5 × the Express handler", Value: med("express.ratio"), Target: 3.5, Unit: "×", Why: h.noExpr},
		{Name: "processor drain ≥ 0.7 × the tuned consumer", Value: med("processor.ratio"), Target: 0.7, Unit: "×"},
		{Name: "ingest req/s ≥ 1.8 × the Connect peer's", Value: med("connect.ingest.ratio"), Target: 1.8, Unit: "×", Why: h.noConn},
		{Name: "processor drain ≥ 4 × the Connect peer's", Value: med("connect.proc.ratio"), Target: 4, Unit: "×", Why: h.noConn},
		{Name: "whole pipeline sustained ≥ 0.75 × ingest alone", Value: med("pipeline.ratio"), Target: 0.75, Unit: "×"},
		{Name: "waiting message sent ≤ 2 s (p99) after its last need is stored, all-in-one", Value: max(med("wake.aio.contact.p99"), med("wake.aio.link.p99")), Target: 2000, AtMost: true, Unit: "ms"},
		{Name: "waiting message sent ≤ 2 s (p99) after its last need is stored, services", Value: max(med("wake.svc.contact.p99"), med("wake.svc.link.p99")), Target: 2000, AtMost: true, Unit: "ms"},
		{Name: "durable all-in-one ≥ 0.8 × raw fsync-always publish", Value: med("aio.ratio"), Target: 0.8, Unit: "×"},
		{Name: "ingest peak RSS under full load ≤ 40 MiB", Value: med("ingest.rss"), Target: 40, AtMost: true, Unit: "MiB"},
		{Name: "all-in-one peak RSS ≤ 150 MiB, sync always (default)", Value: med("aio.always.rss"), Target: 150, AtMost: true, Unit: "MiB"},
		{Name: "all-in-one peak RSS ≤ 150 MiB, sync 2m", Value: med("aio.relaxed.rss"), Target: 150, AtMost: true, Unit: "MiB"},
		{Name: "all-in-one peak RSS ≤ 100 MiB, durable and relaxed (issue 18)", Value: max(med("aio.always.rss"), med("aio.relaxed.rss")), Target: 100, AtMost: true, Unit: "MiB"},
	}
	for _, m := range micro {
		if isDedupeKey(m) || isSignature(m) {
			d.Goals = append(d.Goals, report.Goal{
				Name:  fmt.Sprintf("zero allocations: %s %s", shortPkg(m.Package), m.Name),
				Value: report.Summarize(m.AllocsOp).Median, Target: 0, AtMost: true, Unit: "allocs/op",
			})
		}
		m.Package = shortPkg(m.Package)
		d.Micro = append(d.Micro, m)
	}
	d.Notes = h.notes
	return d
}

func isDedupeKey(m report.Micro) bool {
	// AppendKey is the derivation; Key wraps it to return a string, which
	// costs that string's one allocation by definition.
	return strings.HasSuffix(m.Package, "/dedupe") && strings.HasPrefix(m.Name, "AppendKey")
}

func isSignature(m report.Micro) bool {
	return strings.HasSuffix(m.Package, "/verify") && strings.HasPrefix(m.Name, "Signature")
}

func shortPkg(p string) string { return strings.TrimPrefix(p, "github.com/esimflow/esimflow/") }

// machine describes where the figures were measured.
func (h *Harness) machine(ctx context.Context) [][2]string {
	m := [][2]string{
		{"CPU", cpuModel()},
		{"cores", fmt.Sprint(runtime.NumCPU())},
		{"Go", commandLine(ctx, "go", "env", "GOVERSION")},
		{"nats-server", commandLine(ctx, h.cfg.NATSBin, "--version") + " (external); " + server.VERSION + " (embedded)"},
		{"Redis", commandLine(ctx, h.cfg.RedisBin, "--version")},
	}
	if h.cfg.NodeBin != "" {
		m = append(m, [2]string{"Node.js", commandLine(ctx, h.cfg.NodeBin, "--version")})
	}
	m = append(m, [2]string{"kernel", commandLine(ctx, "uname", "-sr")})
	return m
}

func cpuModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), ":"); ok && strings.TrimSpace(k) == "model name" {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}

func commandLine(ctx context.Context, name string, args ...string) string {
	out, err := exec.CommandContext(ctx, name, args...).Output()
	if err != nil {
		return "unknown (" + err.Error() + ")"
	}
	return strings.TrimSpace(lastLine(out))
}
