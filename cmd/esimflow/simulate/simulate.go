package simulate

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/esimflow/esimflow/shared/intent"
	"github.com/esimflow/esimflow/shared/lifecycle"
)

// Config holds a run's knobs.
type Config struct {
	// Seed decides the lifecycles, the drops and the duplicates.
	Seed uint64
	// ESIMs is how many lifecycles (one order and one eSIM each).
	ESIMs int
	// Rate is the webhooks sent per second, on average over the run.
	Rate float64
	// Duplicates is the share of webhooks sent again after their 200; Drop
	// the share never sent (only a reconciler can learn of those).
	Duplicates, Drop float64
	// Reorder is up to how far each webhook's send time moves from its
	// step's before pacing (lifecycle.Options.Jitter).
	Reorder time.Duration
	// Workers is the sender's pool; Attempts how often a webhook is sent
	// before it is given up; Backoff the first wait between attempts.
	Workers, Attempts int
	Backoff           time.Duration
	// Webhook is where the webhooks go; Provider names their format and
	// signature (ESIMAccess, the default, or Airalo).
	Webhook, Provider string
	// Rules are the target's message rules (the processor's settings).
	Rules intent.Rules
	// CheckTimeout bounds how long Check waits for esimflow to converge.
	CheckTimeout time.Duration
}

// Validate says what is wrong with c, all at once.
func (c Config) Validate() error {
	var errs []error
	share := func(name string, v float64) {
		if v < 0 || v > 1 {
			errs = append(errs, fmt.Errorf("%s: want a share from 0 to 1, got %g", name, v))
		}
	}
	if c.ESIMs < 1 {
		errs = append(errs, fmt.Errorf("esims: want 1 or more, got %d", c.ESIMs))
	}
	if c.Rate <= 0 {
		errs = append(errs, fmt.Errorf("rate: want more than 0 webhooks per second, got %g", c.Rate))
	}
	share("duplicates", c.Duplicates)
	share("drop", c.Drop)
	if c.Reorder < 0 {
		errs = append(errs, fmt.Errorf("reorder: want 0 or more, got %v", c.Reorder))
	}
	if c.Workers < 1 || c.Attempts < 1 || c.Backoff <= 0 {
		errs = append(errs, fmt.Errorf("workers, attempts, backoff: want 1 or more and a positive wait, got %d, %d, %v", c.Workers, c.Attempts, c.Backoff))
	}
	if c.Provider != "" && c.Provider != ESIMAccess && c.Provider != Airalo {
		errs = append(errs, fmt.Errorf("provider: want %s or %s, got %q", ESIMAccess, Airalo, c.Provider))
	}
	if u, err := url.Parse(c.Webhook); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		errs = append(errs, fmt.Errorf("url: want the webhook endpoint, http(s)://host/…, got %q", c.Webhook))
	}
	return errors.Join(errs...)
}

// Sim is one seeded run: its plan, what it sends, and the truth.
type Sim struct {
	cfg   Config
	Plan  []*lifecycle.ESIM
	sends []*delivery
	// byEvent are the sends by eSIM and event index.
	byEvent [][]*delivery
}

// New plans the run: the same seed gives the same plan, bodies, drops and
// duplicates.
func New(cfg Config) (*Sim, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	// Entities are named by the seed, so that runs with other seeds against
	// the same esimflow never share an order or an eSIM.
	plan, err := lifecycle.Plan(rand.New(rand.NewPCG(cfg.Seed, 1)), lifecycle.Options{ESIMs: cfg.ESIMs, Span: time.Minute,
		Jitter: cfg.Reorder, Prefix: fmt.Sprintf("SIM%d-", cfg.Seed), ICCIDPrefix: fmt.Sprintf("8999%06d", cfg.Seed%1_000_000)})
	if err != nil {
		return nil, err
	}
	s := &Sim{cfg: cfg, Plan: plan}
	rng := rand.New(rand.NewPCG(cfg.Seed, 2))
	var last time.Duration
	s.byEvent = make([][]*delivery, len(plan))
	for i, e := range plan {
		for k, ev := range e.Events {
			d := &delivery{esim: i, event: k, body: ev.Body, at: ev.At}
			s.byEvent[i] = append(s.byEvent[i], d)
			d.drop = rng.Float64() < cfg.Drop
			d.twice = rng.Float64() < cfg.Duplicates && !d.drop
			if cfg.Provider == Airalo {
				body, ok, err := airaloBody(ev.Body, "simulator-1gb-30days")
				if err != nil {
					return nil, err
				}
				d.body, d.silent = body, !ok
			}
			s.sends = append(s.sends, d)
			last = max(last, ev.At)
		}
	}
	// Pace: stretch or squeeze the plan's schedule, keeping its order, so
	// that the webhooks go out at the rate asked for on average.
	if last > 0 {
		want := time.Duration(float64(len(s.sends)) / cfg.Rate * float64(time.Second))
		for _, d := range s.sends {
			d.at = time.Duration(float64(d.at) * float64(want) / float64(last))
		}
	}
	return s, nil
}

// Webhooks returns how many webhooks the plan holds (dropped ones included).
func (s *Sim) Webhooks() int {
	n := 0
	for _, d := range s.sends {
		if !d.silent {
			n++
		}
	}
	return n
}

// errNoTruth: what esimflow makes of Airalo's webhooks is its ingest
// adapter's (the providers issue), not known here yet.
var errNoTruth = errors.New("the truth is known for eSIM Access webhooks only: Airalo's low-data webhooks carry no order or status, and what esimflow makes of them is its Airalo adapter's")

// Expect is what esimflow must end with (see Expect).
func (s *Sim) Expect(ctx context.Context) (Expected, error) {
	if s.cfg.Provider == Airalo {
		return Expected{}, errNoTruth
	}
	return Expect(ctx, s.Plan, s.cfg.Rules)
}

// Deps are what a run talks to.
type Deps struct {
	// Sign adds the signature headers the target checks (nil: none).
	Sign func(*http.Request, []byte)
	// Client posts the webhooks; its timeout is the provider's patience.
	Client *http.Client
	// Provider, when set, learns of each event as it happens.
	Provider *Provider
	Log      *slog.Logger
}

// Send plays the plan against the webhook URL and returns what it did; the
// error lists the webhooks given up on.
func (s *Sim) Send(ctx context.Context, deps Deps) (*Stats, error) {
	if deps.Client == nil {
		return nil, errors.New("simulate: an HTTP client is required")
	}
	stats := &Stats{}
	sign := func(*http.Request, string, []byte) {}
	if deps.Sign != nil {
		sign = func(r *http.Request, _ string, body []byte) { deps.Sign(r, body) }
	}
	snd := &lifecycle.Sender{URLs: []string{s.cfg.Webhook}, Sign: sign, Client: deps.Client, Attempts: s.cfg.Attempts,
		Backoff: s.cfg.Backoff, MaxBackoff: 8 * s.cfg.Backoff, MaxRetryAfter: maxRetryAfter, Stats: &stats.Stats}
	errs := play(ctx, snd, stats, s.cfg.Seed, s.sends, s.cfg.Workers, func(d *delivery) {
		if deps.Provider != nil {
			deps.Provider.Played(d.esim, d.event)
		}
	})
	if len(errs) > 0 {
		return stats, fmt.Errorf("%d webhooks not delivered: %w", len(errs), errors.Join(first(errs, 5)...))
	}
	return stats, nil
}

func first(errs []error, n int) []error {
	if len(errs) <= n {
		return errs
	}
	return append(errs[:n:n], fmt.Errorf("… %d more", len(errs)-n))
}

// PrintStats writes one line of what was sent.
func PrintStats(w io.Writer, st *Stats, took time.Duration) {
	codes := st.ByStatus()
	keys := slices.Sorted(maps.Keys(codes))
	answers := make([]string, 0, len(keys)+1)
	for _, k := range keys {
		answers = append(answers, fmt.Sprintf("%d×%d", codes[k], k))
	}
	if n := st.Errors.Load(); n > 0 {
		answers = append(answers, fmt.Sprintf("%d×no answer", n))
	}
	fmt.Fprintf(w, "sent %d webhooks in %v: %d dropped, %d sent twice, %d retries, %d given up; answers %s\n",
		st.Sent.Load(), took.Round(100*time.Millisecond), st.Dropped.Load(), st.Duplicates.Load(), st.Retries.Load(), st.Failed.Load(), strings.Join(answers, ", "))
}
