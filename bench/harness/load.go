package harness

import (
	"context"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/esimflow/esimflow/ingest/verify"
	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// The request bodies are the provider documentation's examples (the fixtures
// the decoders are tested against), compacted, with the ICCID, order number and
// timestamp varied per request so every request is a distinct event with its
// own dedupe key: a load of one repeated body would measure the duplicate path.
var bodyShapes = []string{
	`{"eventType":"PROFILE_STATUS","iccid":"%s","orderNo":"ORD%s","previousStatus":"GOT_RESOURCE","currentStatus":"ACTIVATED","timestamp":"%s"}`,
	`{"eventType":"DATA_USAGE","iccid":"%s","orderNo":"ORD%s","usedVolume":859832320,"totalVolume":1073741824,"usagePercent":80,"timestamp":"%s"}`,
	`{"eventType":"ORDER_STATUS","orderNo":"ORD%[2]s","transactionId":"order_%[2]s","status":"GOT_RESOURCE","timestamp":"%[3]s","profiles":[{"iccid":"%[1]s","esimTranNo":"ESIM%[2]s","status":"GOT_RESOURCE"}]}`,
}

// Bodies makes distinct webhook bodies; safe for concurrent use.
type Bodies struct {
	prefix string // per generator, so two runs never share an event
	n      atomic.Uint64
	base   time.Time
}

// NewBodies returns a generator whose events no other generator makes: seed
// (0–99) goes into every ICCID.
func NewBodies(seed int) *Bodies {
	return &Bodies{prefix: fmt.Sprintf("89%02d", seed%100), base: time.Date(2024, 1, 15, 0, 0, 0, 0, time.UTC)}
}

// Next returns the next body.
func (b *Bodies) Next() []byte {
	n := b.n.Add(1)
	iccid := fmt.Sprintf("%s%015d", b.prefix, n)
	order := fmt.Sprintf("%s%09d", b.prefix[2:], n)
	ts := b.base.Add(time.Duration(n) * time.Millisecond).Format(time.RFC3339Nano)
	return fmt.Appendf(nil, bodyShapes[n%uint64(len(bodyShapes))], iccid, order, ts)
}

// Signer holds what the harness configures ingest's verification with: a
// path token and a Standard Webhooks secret. Every target carries both, also
// those sent to the baselines (which ignore them), so the load generator does
// the same work whichever server it measures.
type Signer struct {
	Token  string
	Secret string // whsec_…
	sw     *verify.StandardWebhooks
}

// NewSigner makes fresh credentials.
func NewSigner() (*Signer, error) {
	secret := "whsec_" + base64.StdEncoding.EncodeToString([]byte("esimbench-secret-0123456789abcdef"))
	sw, err := verify.NewStandardWebhooks([]string{secret}, 5*time.Minute, time.Now)
	if err != nil {
		return nil, fmt.Errorf("signer: %w", err)
	}
	return &Signer{Token: "esimbench-token-0123456789", Secret: secret, sw: sw}, nil
}

// Targeter returns signed POSTs of distinct bodies to base+"/webhooks/esim/"+token.
func (s *Signer) Targeter(base string, bodies *Bodies) vegeta.Targeter {
	url := base + "/webhooks/esim/" + s.Token
	var n atomic.Uint64
	return func(t *vegeta.Target) error {
		body := bodies.Next()
		id := "msg_" + strconv.FormatUint(n.Add(1), 10)
		now := time.Now()
		t.Method = http.MethodPost
		t.URL = url
		t.Body = body
		t.Header = http.Header{
			"Content-Type":      {"application/json"},
			"Webhook-Id":        {id},
			"Webhook-Timestamp": {strconv.FormatInt(now.Unix(), 10)},
			"Webhook-Signature": {s.sw.Sign(id, now, body)},
		}
		return nil
	}
}

// Load is one attack's outcome.
type Load struct {
	Rate           float64 // successful requests per second
	Offered        float64 // requests sent per second
	Requests       uint64
	Success        float64 // fraction answered 2xx
	P50, P99, P999 time.Duration
	Errors         []string
}

// Err is nil when every request succeeded, else a summary of what failed.
func (l Load) Err() error {
	if l.Requests > 0 && l.Success >= 0.999 {
		return nil
	}
	return fmt.Errorf("%d requests, %.2f%% answered 2xx, errors: %v", l.Requests, 100*l.Success, first(l.Errors, 3))
}

func first(s []string, n int) []string { return s[:min(n, len(s))] }

// MaxLoad sends as fast as conns connections allow for d: each of conns
// workers sends its next request when the last one is answered (wrk's model).
func MaxLoad(ctx context.Context, tr vegeta.Targeter, conns int, d time.Duration) Load {
	a := vegeta.NewAttacker(vegeta.Workers(uint64(conns)), vegeta.MaxWorkers(uint64(conns)),
		vegeta.Connections(conns), vegeta.MaxConnections(conns), vegeta.Timeout(10*time.Second))
	return attack(ctx, a, tr, vegeta.Rate{Freq: 0}, d)
}

// RateLoad sends rate requests a second for d, over at most conns connections
// (more workers than connections wait for one, and their wait counts in the
// latency, as it would for the provider).
func RateLoad(ctx context.Context, tr vegeta.Targeter, rate float64, conns int, d time.Duration) Load {
	p := NewPaced(rate, conns)
	p.Run(ctx, tr, d)
	return p.Load()
}

// Paced is a constant-rate load run in slices whose results add up to one
// Load, so that two servers' latencies can be read over alternating slices
// of the same minutes. Its connections are kept from slice to slice: each
// slice's attacker (one attack each) shares one transport.
type Paced struct {
	client *http.Client
	conns  int
	pacer  vegeta.Pacer
	m      vegeta.Metrics
}

// NewPaced prepares a load of rate requests a second over at most conns
// connections, as RateLoad sends it.
func NewPaced(rate float64, conns int) *Paced {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost: conns,
		MaxConnsPerHost:     conns,
	}
	return &Paced{
		client: &http.Client{Transport: tr, Timeout: 10 * time.Second},
		conns:  conns,
		pacer:  vegeta.ConstantPacer{Freq: int(rate), Per: time.Second},
	}
}

// Run sends one slice of d to tr, adds its results and returns the slice's.
func (p *Paced) Run(ctx context.Context, tr vegeta.Targeter, d time.Duration) Load {
	a := vegeta.NewAttacker(vegeta.Client(p.client), vegeta.Workers(uint64(p.conns)), vegeta.MaxWorkers(uint64(4*p.conns)))
	var slice vegeta.Metrics
	attackInto(ctx, a, tr, p.pacer, d, &p.m, &slice)
	return loadOf(&slice)
}

// Load is what the slices run so far add up to: latencies and counts. Its
// rates span the time between the slices too.
func (p *Paced) Load() Load { return loadOf(&p.m) }

func attack(ctx context.Context, a *vegeta.Attacker, tr vegeta.Targeter, p vegeta.Pacer, d time.Duration) Load {
	var m vegeta.Metrics
	attackInto(ctx, a, tr, p, d, &m)
	return loadOf(&m)
}

// attackInto runs one attack and adds its results to each of ms.
func attackInto(ctx context.Context, a *vegeta.Attacker, tr vegeta.Targeter, p vegeta.Pacer, d time.Duration, ms ...*vegeta.Metrics) {
	stop := context.AfterFunc(ctx, func() { a.Stop() })
	defer stop()
	for res := range a.Attack(tr, p, d, "esimbench") {
		for _, m := range ms {
			m.Add(res)
		}
	}
}

func loadOf(m *vegeta.Metrics) Load {
	m.Close()
	return Load{
		Rate:     m.Throughput,
		Offered:  m.Rate,
		Requests: m.Requests,
		Success:  m.Success,
		P50:      m.Latencies.P50,
		P99:      m.Latencies.P99,
		P999:     m.Latencies.Quantile(0.999),
		Errors:   m.Errors,
	}
}
