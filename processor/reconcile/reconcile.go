package reconcile

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/esimflow/esimflow/shared/config"
	"github.com/esimflow/esimflow/shared/dedupe"
	"github.com/esimflow/esimflow/shared/event"
	"github.com/esimflow/esimflow/shared/intent"
	"github.com/esimflow/esimflow/shared/provider"
	"github.com/esimflow/esimflow/shared/store"
	"github.com/esimflow/esimflow/shared/stream"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// Store is what the reconciler reads, leases and budgets.
type Store interface {
	Order(ctx context.Context, orderNo string) (store.Order, error)
	Profile(ctx context.Context, iccid string) (store.Profile, error)
	Claim(ctx context.Context, id, owner string, lease time.Duration) (store.Claim, error)
	store.Budgets
}

// Publisher stores polled events in ESIM_EVENTS.
type Publisher interface {
	PublishMsg(ctx context.Context, msg *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error)
}

// Deps are what a Reconciler needs.
type Deps struct {
	Store     Store
	Publisher Publisher
	Names     stream.Names
	// Owner names this instance in the sweep lease; unique per process.
	Owner      string
	Registerer prometheus.Registerer
	Logger     *slog.Logger
	// Client makes the query calls (default: a 10 s timeout).
	Client *http.Client
}

// Provider is the name the reconciler's events and metrics carry: the
// query API it speaks is eSIM Access's, whose adapter reads its events.
const Provider = provider.Default

// HeaderSourcePoll is the Esimflow-Source value of a polled event.
const HeaderSourcePoll = "poll"

// Reconciler sweeps one provider account.
type Reconciler struct {
	cfg     config.Reconcile
	deps    Deps
	client  *client
	budget  string
	metrics *metrics
	log     *slog.Logger

	mu sync.Mutex
	// differs is, per entity whose state differs from the provider's, when
	// this instance first saw it differ with nothing heard of it; retry
	// the backoff of entities already polled.
	differs map[string]time.Time
	retry   map[string]backoff
}

type backoff struct {
	next     time.Time
	attempts int
}

// New checks cfg and deps and returns a reconciler.
func New(cfg config.Reconcile, deps Deps) (*Reconciler, error) {
	if deps.Store == nil || deps.Publisher == nil || deps.Registerer == nil || deps.Logger == nil || deps.Owner == "" {
		return nil, errors.New("reconcile: store, publisher, registerer, logger and owner are required")
	}
	if !cfg.On() || cfg.AccessCode == "" || cfg.Secret == "" || cfg.Stale <= 0 || cfg.Interval <= 0 || cfg.Lookback <= 0 || cfg.Rate < 1 {
		return nil, errors.New("reconcile: want a URL, access code, secret, positive stale threshold, interval and lookback, and a rate of 1 or more")
	}
	if deps.Client == nil {
		deps.Client = &http.Client{Timeout: 10 * time.Second}
	}
	// The budget is the account's, named without its access code.
	sum := sha256.Sum256([]byte(cfg.URL + "\x00" + cfg.AccessCode))
	return &Reconciler{cfg: cfg, deps: deps, log: deps.Logger.With("part", "reconciler", "provider", Provider),
		client:  &client{base: cfg.URL, accessCode: cfg.AccessCode, secret: cfg.Secret, http: deps.Client},
		budget:  "reconcile." + Provider + "." + hex.EncodeToString(sum[:8]),
		metrics: newMetrics(deps.Registerer), differs: map[string]time.Time{}, retry: map[string]backoff{}}, nil
}

// Run sweeps whenever this instance wins the sweep lease, until ctx ends.
// Instances try a few times per interval; the lease lasts one interval, so
// one sweep per interval is made by whichever instance got it.
func (r *Reconciler) Run(ctx context.Context) error {
	tick := time.NewTicker(max(r.cfg.Interval/4, 10*time.Millisecond))
	defer tick.Stop()
	for {
		if err := r.SweepIfLeased(ctx); err != nil && ctx.Err() == nil {
			r.log.Warn("sweep failed, the next one retries", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// SweepIfLeased sweeps when this instance takes the sweep lease.
func (r *Reconciler) SweepIfLeased(ctx context.Context) error {
	c, err := r.deps.Store.Claim(ctx, "reconcile.sweep."+r.budget, r.deps.Owner, r.cfg.Interval)
	if err != nil {
		return fmt.Errorf("sweep lease: %w", err)
	}
	if c.Outcome != store.Claimed {
		return nil
	}
	// The sweep ends with its lease, so that two never overlap.
	ctx, cancel := context.WithDeadline(ctx, c.LeaseUntil)
	defer cancel()
	return r.Sweep(ctx)
}

// Sweep pages through the orders of the lookback window and reconciles
// each profile listed. It takes no lease: Run sweeps through
// SweepIfLeased; a caller of its own keeps two sweeps of an account apart.
func (r *Reconciler) Sweep(ctx context.Context) error {
	to := time.Now()
	from := to.Add(-r.cfg.Lookback)
	for num := 1; ; num++ {
		list, total, err := r.page(ctx, from, to, num)
		if err != nil {
			return err
		}
		for _, p := range list {
			if err := r.reconcile(ctx, p); err != nil {
				return fmt.Errorf("order %s, iccid %s: %w", p.OrderNo, p.ICCID, err)
			}
		}
		if len(list) == 0 || num*PageSize >= total {
			return nil
		}
	}
}

// page makes one query call within the budget: it waits for the budget's
// next window when this one is spent, and retries a 429 or 5xx a few
// times after the wait the provider asks for.
func (r *Reconciler) page(ctx context.Context, from, to time.Time, num int) ([]Profile, int, error) {
	for attempt := 1; ; attempt++ {
		if err := r.take(ctx); err != nil {
			return nil, 0, err
		}
		list, total, err := r.client.page(ctx, from, to, num)
		var retry *errRetry
		switch {
		case err == nil:
			r.metrics.polls.WithLabelValues(Provider, "ok").Inc()
			return list, total, nil
		case errors.As(err, &retry) && attempt < 4:
			r.metrics.polls.WithLabelValues(Provider, fmt.Sprint(retry.status)).Inc()
			if err := sleep(ctx, max(retry.after, time.Duration(attempt)*200*time.Millisecond)); err != nil {
				return nil, 0, err
			}
		default:
			r.metrics.polls.WithLabelValues(Provider, "error").Inc()
			return nil, 0, fmt.Errorf("query page %d: %w", num, err)
		}
	}
}

// take takes one call from the account's budget, waiting for the next
// window while it is spent.
func (r *Reconciler) take(ctx context.Context) error {
	for {
		ok, err := r.deps.Store.Take(ctx, r.budget, r.cfg.Rate, time.Second)
		if err != nil {
			return err
		}
		if ok {
			return nil
		}
		now := time.Now()
		if err := sleep(ctx, now.Truncate(time.Second).Add(time.Second).Sub(now)); err != nil {
			return err
		}
	}
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// reconcile compares one profile of the provider's with the state, and
// publishes what differs when it is due.
func (r *Reconciler) reconcile(ctx context.Context, p Profile) error {
	o, err := r.deps.Store.Order(ctx, p.OrderNo)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	prof, err := r.deps.Store.Profile(ctx, p.ICCID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	bodies, install := Diff(p, o, prof)
	key := p.OrderNo + "/" + p.ICCID
	now := time.Now()
	if len(bodies) == 0 {
		r.forget(key)
		return nil
	}
	if !install && !r.due(key, lastHeard(o, prof), now) {
		return nil
	}
	for _, b := range bodies {
		if err := r.publish(ctx, b); err != nil {
			return err
		}
	}
	r.backOff(key, now)
	return nil
}

// due reports whether an entity that differs has been silent long enough,
// and is past its backoff.
func (r *Reconciler) due(key string, heard, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	first, seen := r.differs[key]
	if !seen {
		first = now
		r.differs[key] = now
	}
	since := later(first, heard)
	if now.Sub(since) < r.cfg.Stale {
		return false
	}
	return !now.Before(r.retry[key].next)
}

// backOff doubles an entity's wait after a poll's events, up to eight
// stale thresholds: its events may still be on their way through the
// processor, or the merge may rightly keep a state the provider's view
// disagrees with.
func (r *Reconciler) backOff(key string, now time.Time) {
	r.mu.Lock()
	defer r.mu.Unlock()
	b := r.retry[key]
	b.attempts++
	wait := time.Duration(float64(r.cfg.Stale) * math.Pow(2, float64(min(b.attempts-1, 3))))
	b.next = now.Add(wait)
	r.retry[key] = b
}

func (r *Reconciler) forget(key string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.differs, key)
	delete(r.retry, key)
}

// lastHeard is when ESIM_EVENTS last stored an event of the order or the
// profile (zero when never, or for states from before the timeline).
func lastHeard(o store.Order, p store.Profile) time.Time {
	var t time.Time
	for _, h := range [][]store.Transition{o.History, p.History} {
		if len(h) > 0 {
			t = later(t, h[0].ReceivedAt)
		}
	}
	for _, u := range p.Usage {
		t = later(t, u.ReceivedAt)
	}
	return t
}

func later(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// publish stores one polled event as ingest stores a webhook: its subject
// by type, its dedupe key as Nats-Msg-Id, the time it was received, and
// Esimflow-Source: poll.
func (r *Reconciler) publish(ctx context.Context, body []byte) error {
	ev, err := event.Decode(body)
	if err != nil {
		return fmt.Errorf("polled event %s: %w", body, err)
	}
	msg := nats.NewMsg(r.deps.Names.EventSubject(ev.Type))
	msg.Data = body
	msg.Header.Set(stream.HeaderReceivedAt, time.Now().UTC().Format(time.RFC3339Nano))
	msg.Header.Set(stream.HeaderSource, HeaderSourcePoll)
	// The provider and adapter headers, as ingest stores a webhook of it.
	msg.Header.Set(stream.HeaderProvider, Provider)
	msg.Header.Set(stream.HeaderAdapter, provider.ESIMAccess().Version())
	var opts []jetstream.PublishOpt
	if key := dedupe.Key(ev, nil, body); key != "" {
		opts = append(opts, jetstream.WithMsgID(key))
	}
	if _, err := r.deps.Publisher.PublishMsg(ctx, msg, opts...); err != nil {
		return fmt.Errorf("publish polled %s: %w", ev.Type, err)
	}
	r.metrics.events.WithLabelValues(Provider, string(ev.Type)).Inc()
	r.log.Info("polled event published", "type", ev.Type, "order", ev.OrderNo, "iccid", ev.ICCID)
	return nil
}

// Diff lists the events, in eSIM Access's webhook format, that bring the
// state of p's order and profile to what the provider says, at the time of
// the provider's view (its updateTime); install is set when one brings
// install data the profile lacks, which is published at once.
func Diff(p Profile, o store.Order, prof store.Profile) (bodies [][]byte, install bool) {
	at := p.UpdateTime
	if _, err := time.Parse(time.RFC3339, at); err != nil {
		at = "" // untimed: ordered by arrival
	}
	orderStatus, esimStatus := event.CanonicalStatus(p.OrderStatus), event.CanonicalStatus(p.EsimStatus)
	add := func(kind string, content map[string]any) {
		content["orderNo"], content["transactionId"], content["iccid"] = p.OrderNo, p.TransactionID, p.ICCID
		env := map[string]any{"notifyType": kind, "content": content}
		if at != "" {
			env["eventGenerateTime"] = at
		}
		b, err := json.Marshal(env)
		if err == nil { // maps of strings and numbers always marshal
			bodies = append(bodies, b)
		}
	}

	install = p.ActivationCode != "" && (prof.Install == nil || prof.Install.ActivationCode == "")
	if install || orderStatus != "" && orderStatus != o.Status || !slices.Contains(o.Profiles, p.ICCID) {
		ref := map[string]any{"iccid": p.ICCID, "esimTranNo": p.EsimTranNo}
		if p.ActivationCode != "" {
			ref["ac"], ref["qrCodeUrl"], ref["shortUrl"] = p.ActivationCode, p.QRCodeURL, p.ShortURL
		}
		add("ORDER_STATUS", map[string]any{"orderStatus": p.OrderStatus, "esimTranNo": p.EsimTranNo, "profiles": []any{ref}})
	}
	if esimStatus != "" && !sameStatus(esimStatus, prof.Status) {
		c := map[string]any{"esimStatus": p.EsimStatus}
		if p.SmdpStatus != "" {
			c["smdpStatus"] = p.SmdpStatus
		}
		add("ESIM_STATUS", c)
	}
	if p.TotalVolume > 0 && (p.OrderUsage != prof.UsedVolume || p.TotalVolume != prof.TotalVolume) {
		// The percent to two places, as providers report it: derived from
		// whole bytes, 80 % of 1 GiB comes out a hair under 80 and would
		// miss the threshold the provider's own report crosses.
		c := map[string]any{"orderUsage": p.OrderUsage, "totalVolume": p.TotalVolume,
			"usagePercent": math.Round(float64(p.OrderUsage)*10000/float64(p.TotalVolume)) / 100}
		// Name the subscription as its usage reports so far do, so that
		// the poll's report falls in the same bundle (intent.Subscription).
		if n := len(prof.Usage); n > 0 && prof.Usage[n-1].Subscription == intent.Subscription(p.ICCID, p.EsimTranNo, "") {
			c["esimTranNo"] = p.EsimTranNo
		}
		add("DATA_USAGE", c)
	}
	if exp, err := time.Parse(time.RFC3339, p.ExpiredTime); err == nil && at != "" &&
		(prof.Validity == nil || !prof.Validity.ExpiresAt.Equal(exp)) {
		now, _ := time.Parse(time.RFC3339, at)
		add("VALIDITY_USAGE", map[string]any{"expiredTime": p.ExpiredTime, "durationUnit": "DAY",
			"remain": max(0, int64(exp.Sub(now)/(24*time.Hour)))})
	}
	return bodies, install
}

// sameStatus: eSIM Access's IN_USE is the documented ACTIVATED.
func sameStatus(a, b string) bool {
	return a == b || slices.Contains(intent.ActivatedStatuses, a) && slices.Contains(intent.ActivatedStatuses, b)
}

type metrics struct {
	polls, events *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		polls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "esimflow_reconcile_polls_total",
			Help: "Calls to the provider's query API, by provider and outcome (ok, 429, 5xx status, error).",
		}, []string{"provider", "outcome"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "esimflow_reconcile_events_total",
			Help: "Events the reconciler published because the state lacked what the provider knew (missed or late webhooks, install data), by provider and type.",
		}, []string{"provider", "type"}),
	}
	reg.MustRegister(m.polls, m.events)
	return m
}
