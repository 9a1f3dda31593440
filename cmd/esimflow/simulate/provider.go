package simulate

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/esimflow/esimflow/processor/reconcile"
	"github.com/esimflow/esimflow/shared/event"
	"github.com/esimflow/esimflow/shared/lifecycle"
	"golang.org/x/time/rate"
)

// Provider is the simulated provider's open API (eSIM Access compatible)
// over a plan's lifecycles: it answers with what has happened so far, so a
// reconciler that polls it learns what a dropped webhook would have said.
type Provider struct {
	opts    ProviderOptions
	limiter *rate.Limiter

	mu      sync.Mutex
	rng     *rand.Rand
	esims   []*lifecycle.ESIM
	byICCID map[string][]int // ICCIDs are reused across orders
	byOrder map[string]int
	byTran  map[string]int
	// happened is, per eSIM, how many of its events the provider has
	// played (sent or not): the query API folds those.
	happened []int
	// shown is, per eSIM, the events whose effect an answer of the query
	// API has shown (the latest status and usage when it answered): what a
	// poller can have learnt of a webhook that never came.
	shown    [][]bool
	webhook  string
	requests int
}

// ProviderOptions configure the API.
type ProviderOptions struct {
	// AccessCode and SecretKey are the account's RT-AccessCode and
	// RT-SecretKey; every call needs the first, webhook/save both.
	AccessCode, SecretKey string
	// RateLimit is the calls per second the account may make (the
	// provider's is 8); beyond it the API answers 429.
	RateLimit float64
	// SlowRate is the share of calls answered only after SlowBy;
	// ErrorRate the share answered 5xx.
	SlowRate, ErrorRate float64
	SlowBy              time.Duration
	// Seed makes the slow and failed calls reproducible.
	Seed uint64
	// Sign signs the CHECK_HEALTH call webhook/save makes, as webhooks are.
	Sign func(*http.Request, []byte)
	// Client makes that call.
	Client *http.Client
}

// Paths of the API.
const (
	PathQuery       = "/api/v1/open/esim/query"
	PathUsageQuery  = "/api/v1/open/esim/usage/query"
	PathWebhookSave = "/api/v1/open/webhook/save"
)

// MaxPageSize and MaxUsageBatch are the provider's limits: a page of
// esim/query, the esimTranNos of one usage/query.
const (
	MaxPageSize   = 100
	MaxUsageBatch = 10
)

// NewProvider returns the API over plan, with nothing played yet.
func NewProvider(plan []*lifecycle.ESIM, o ProviderOptions) (*Provider, error) {
	if o.AccessCode == "" || o.SecretKey == "" {
		return nil, fmt.Errorf("provider API: an access code and a secret key are required")
	}
	if o.RateLimit <= 0 || o.SlowRate < 0 || o.SlowRate > 1 || o.ErrorRate < 0 || o.ErrorRate > 1 {
		return nil, fmt.Errorf("provider API: want a positive rate limit and slow and error shares from 0 to 1")
	}
	if o.Client == nil {
		o.Client = &http.Client{Timeout: 10 * time.Second}
	}
	p := &Provider{opts: o, limiter: rate.NewLimiter(rate.Limit(o.RateLimit), max(1, int(o.RateLimit))),
		rng: rand.New(rand.NewPCG(o.Seed, 4)), esims: plan, happened: make([]int, len(plan)), shown: make([][]bool, len(plan)),
		byICCID: map[string][]int{}, byOrder: map[string]int{}, byTran: map[string]int{}}
	for i, e := range plan {
		p.shown[i] = make([]bool, len(e.Events))
		p.byICCID[e.ICCID] = append(p.byICCID[e.ICCID], i)
		p.byOrder[e.OrderNo] = i
		p.byTran[e.EsimTranNo] = i
	}
	return p, nil
}

// Played records that the eSIM's events up to index k (of its lifecycle)
// have happened; events happen in order at the provider, whatever order
// their webhooks go out in.
func (p *Provider) Played(esim, k int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.happened[esim] = max(p.happened[esim], k+1)
}

// PlayAll records that every event has happened.
func (p *Provider) PlayAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, e := range p.esims {
		p.happened[i] = len(e.Events)
	}
}

// Shown reports whether an answer of the query API has shown what event k
// of eSIM i changed (its status or usage as the latest of its kind then).
func (p *Provider) Shown(i, k int) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.shown[i][k]
}

// Webhook returns the URL last saved with webhook/save.
func (p *Provider) Webhook() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.webhook
}

// Requests returns how many calls reached the API, refused ones included.
func (p *Provider) Requests() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.requests
}

// Handler serves the API: the provider's routes, each behind the account
// check, the rate limit and the slow and failed answers.
func (p *Provider) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("POST "+PathQuery, p.call(p.query))
	mux.Handle("POST "+PathUsageQuery, p.call(p.usage))
	mux.Handle("POST "+PathWebhookSave, p.call(p.saveWebhook))
	return mux
}

// reply is the provider's envelope.
type reply struct {
	Success   bool    `json:"success"`
	ErrorCode string  `json:"errorCode"`
	ErrorMsg  *string `json:"errorMsg"`
	Obj       any     `json:"obj,omitempty"`
}

func write(w http.ResponseWriter, status int, r reply) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(r)
}

func ok(w http.ResponseWriter, obj any) {
	write(w, http.StatusOK, reply{Success: true, ErrorCode: "0", Obj: obj})
}

// fail answers the provider's way: HTTP 200 and success false for a refused
// request, another status where the transport says more.
func fail(w http.ResponseWriter, status int, code, msg string) {
	write(w, status, reply{ErrorCode: code, ErrorMsg: &msg})
}

// Error codes of the simulator's refusals (the provider's envelope, codes
// of its own where the provider documents none).
const (
	codeAuth      = "000001"
	codeBadInput  = "000101"
	codeTooMany   = "000429"
	codeServer    = "000500"
	codeCheckFail = "000201"
)

// call wraps a route: the account check, the rate limit (429 with
// Retry-After, as the provider answers a client over its 8 per second),
// then the configured slow and 5xx answers, then the route with the
// request body decoded.
func (p *Provider) call(route func(w http.ResponseWriter, r *http.Request, body []byte)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.mu.Lock()
		p.requests++
		slow, broken := p.rng.Float64() < p.opts.SlowRate, p.rng.Float64() < p.opts.ErrorRate
		p.mu.Unlock()
		if r.Header.Get("RT-AccessCode") != p.opts.AccessCode {
			fail(w, http.StatusUnauthorized, codeAuth, "RT-AccessCode missing or unknown")
			return
		}
		if !p.limiter.Allow() {
			w.Header().Set("Retry-After", "1")
			fail(w, http.StatusTooManyRequests, codeTooMany, fmt.Sprintf("too many requests: %g per second per account", p.opts.RateLimit))
			return
		}
		// The body is read first: only then does the server notice a
		// client that gave up on a slow answer.
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 64<<10))
		if err != nil {
			fail(w, http.StatusOK, codeBadInput, "body: "+err.Error())
			return
		}
		if slow {
			select {
			case <-r.Context().Done():
				return
			case <-time.After(p.opts.SlowBy):
			}
		}
		if broken {
			fail(w, http.StatusServiceUnavailable, codeServer, "simulated server error")
			return
		}
		route(w, r, body)
	})
}

// Pager is esim/query's paging.
type Pager struct {
	PageNum  int `json:"pageNum"`
	PageSize int `json:"pageSize"`
	Total    int `json:"total,omitempty"`
}

// QueryRequest is esim/query's body: one of orderNo, iccid, esimTranNo, or
// a time range of the orders, and the page.
type QueryRequest struct {
	OrderNo    string `json:"orderNo,omitempty"`
	ICCID      string `json:"iccid,omitempty"`
	EsimTranNo string `json:"esimTranNo,omitempty"`
	StartTime  string `json:"startTime,omitempty"`
	EndTime    string `json:"endTime,omitempty"`
	Pager      Pager  `json:"pager"`
}

// Profile is one entry of esimList: a subscription as the provider knows
// it now — the reconciler's reading of the query API, so the simulator
// serves exactly what esimflow reads.
type Profile = reconcile.Profile

func (p *Provider) query(w http.ResponseWriter, _ *http.Request, body []byte) {
	var q QueryRequest
	if err := json.Unmarshal(body, &q); err != nil {
		fail(w, http.StatusOK, codeBadInput, "body: "+err.Error())
		return
	}
	if q.Pager.PageNum == 0 {
		q.Pager.PageNum = 1
	}
	if q.Pager.PageSize == 0 {
		q.Pager.PageSize = 20
	}
	if q.Pager.PageNum < 1 || q.Pager.PageSize < 1 || q.Pager.PageSize > MaxPageSize {
		fail(w, http.StatusOK, codeBadInput, fmt.Sprintf("pager: pageNum from 1, pageSize from 1 to %d", MaxPageSize))
		return
	}
	idx, err := p.match(q)
	if err != nil {
		fail(w, http.StatusOK, codeBadInput, err.Error())
		return
	}
	from := min(len(idx), (q.Pager.PageNum-1)*q.Pager.PageSize)
	to := min(len(idx), from+q.Pager.PageSize)
	list := make([]Profile, 0, to-from)
	p.mu.Lock()
	for _, i := range idx[from:to] {
		pr, v := p.profile(i)
		// Not the validity: the plan dates period ends far ahead (so that
		// they stay ahead whatever day a run is) and its reports' days
		// left are not the days to that end, so what a poller derives from
		// expiredTime is not what the report said.
		p.show(i, v.order, v.status, v.usage)
		list = append(list, pr)
	}
	p.mu.Unlock()
	ok(w, map[string]any{"esimList": list, "pager": Pager{PageNum: q.Pager.PageNum, PageSize: q.Pager.PageSize, Total: len(idx)}})
}

// match lists the eSIMs a query names, in plan order; only eSIMs whose order
// has happened exist.
func (p *Provider) match(q QueryRequest) ([]int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var idx []int
	switch {
	case q.OrderNo != "":
		if i, ok := p.byOrder[q.OrderNo]; ok {
			idx = []int{i}
		}
	case q.ICCID != "":
		idx = slices.Clone(p.byICCID[q.ICCID])
	case q.EsimTranNo != "":
		if i, ok := p.byTran[q.EsimTranNo]; ok {
			idx = []int{i}
		}
	case q.StartTime != "" && q.EndTime != "":
		start, err1 := parseTime(q.StartTime)
		end, err2 := parseTime(q.EndTime)
		if err1 != nil || err2 != nil || end.Before(start) {
			return nil, fmt.Errorf("startTime and endTime: want two times, the first not after the second (2006-01-02 15:04:05 or RFC 3339, UTC)")
		}
		for i, e := range p.esims {
			if at := p.orderedAt(e); !at.Before(start) && !at.After(end) {
				idx = append(idx, i)
			}
		}
	default:
		return nil, fmt.Errorf("one of orderNo, iccid, esimTranNo, or startTime and endTime, is required")
	}
	return slices.DeleteFunc(idx, func(i int) bool { return p.happened[i] == 0 }), nil
}

func parseTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.DateTime, s); err == nil {
		return t, nil
	}
	return time.Parse(time.RFC3339, s)
}

// orderedAt is when the eSIM's order happened: its first event's time.
func (p *Provider) orderedAt(e *lifecycle.ESIM) time.Time {
	ev, err := event.Decode(e.Events[0].Body)
	if err != nil {
		return time.Time{}
	}
	return ev.Timestamp
}

// latest are the indices of the latest event of each kind folded into a
// view of an eSIM, -1 for none.
type latest struct{ order, status, usage, validity int }

// show marks events as shown by an answer; the caller holds p.mu.
func (p *Provider) show(i int, events ...int) {
	for _, k := range events {
		if k >= 0 {
			p.shown[i][k] = true
		}
	}
}

// profile folds what has happened to eSIM i into the provider's view of it,
// and says which events the view shows; the caller holds p.mu.
func (p *Provider) profile(i int) (Profile, latest) {
	e := p.esims[i]
	out := Profile{EsimTranNo: e.EsimTranNo, OrderNo: e.OrderNo, TransactionID: e.TransactionID, ICCID: e.ICCID,
		ActivationCode: "LPA:1$smdp.simulator.example$" + strings.ToUpper(e.EsimTranNo),
		QRCodeURL:      "https://simulator.example/qr/" + e.ICCID + ".png",
		ShortURL:       "https://simulator.example/install/" + e.ICCID,
		OrderStatus:    "GOT_RESOURCE", EsimStatus: "GOT_RESOURCE"}
	v := latest{-1, -1, -1, -1}
	for k, ev := range e.Events[:p.happened[i]] {
		d, err := event.Decode(ev.Body)
		if err != nil {
			continue // the plan's bodies all decode (lifecycle's tests)
		}
		out.UpdateTime = d.Timestamp.Format(time.RFC3339)
		switch d.Type {
		case event.OrderStatus:
			out.OrderStatus, v.order = d.Status, k
			if d.Status == "CANCELLED" {
				out.EsimStatus = "CANCEL"
			}
		case event.ProfileStatus, event.EsimStatus:
			out.EsimStatus, v.status = esimStatus(d.Status), k
			if d.SmdpStatus != "" {
				out.SmdpStatus = d.SmdpStatus
			}
		case event.DataUsage:
			out.OrderUsage, out.TotalVolume, v.usage = d.UsedVolume, d.TotalVolume, k
		case event.ValidityUsage:
			out.ExpiredTime, v.validity = d.ExpiredTime.Format(time.RFC3339), k
		}
	}
	return out, v
}

// esimStatus spells a canonical profile status as eSIM Access's esimStatus.
func esimStatus(s string) string {
	switch s {
	case "ACTIVATED":
		return "IN_USE"
	case "CANCELLED":
		return "CANCEL"
	}
	return s
}

// UsageRequest is usage/query's body.
type UsageRequest struct {
	EsimTranNoList []string `json:"esimTranNoList"`
}

// Usage is one entry of esimUsageList.
type Usage struct {
	EsimTranNo     string `json:"esimTranNo"`
	DataUsage      int64  `json:"dataUsage"`
	TotalData      int64  `json:"totalData"`
	LastUpdateTime string `json:"lastUpdateTime,omitempty"`
}

func (p *Provider) usage(w http.ResponseWriter, _ *http.Request, body []byte) {
	var q UsageRequest
	if err := json.Unmarshal(body, &q); err != nil {
		fail(w, http.StatusOK, codeBadInput, "body: "+err.Error())
		return
	}
	if len(q.EsimTranNoList) == 0 || len(q.EsimTranNoList) > MaxUsageBatch {
		fail(w, http.StatusOK, codeBadInput, fmt.Sprintf("esimTranNoList: from 1 to %d per call, got %d", MaxUsageBatch, len(q.EsimTranNoList)))
		return
	}
	p.mu.Lock()
	list := make([]Usage, 0, len(q.EsimTranNoList))
	for _, tran := range q.EsimTranNoList {
		i, known := p.byTran[tran]
		if !known || p.happened[i] == 0 {
			continue
		}
		pr, v := p.profile(i)
		p.show(i, v.usage)
		list = append(list, Usage{EsimTranNo: tran, DataUsage: pr.OrderUsage, TotalData: pr.TotalVolume, LastUpdateTime: pr.UpdateTime})
	}
	p.mu.Unlock()
	ok(w, map[string]any{"esimUsageList": list})
}

// saveWebhook checks the URL with a CHECK_HEALTH call, as the provider
// does, and keeps it only when that is answered 200.
func (p *Provider) saveWebhook(w http.ResponseWriter, r *http.Request, body []byte) {
	if r.Header.Get("RT-SecretKey") != p.opts.SecretKey {
		fail(w, http.StatusUnauthorized, codeAuth, "RT-SecretKey missing or wrong")
		return
	}
	var q struct {
		Webhook string `json:"webhook"`
	}
	if err := json.Unmarshal(body, &q); err != nil || !strings.HasPrefix(q.Webhook, "http://") && !strings.HasPrefix(q.Webhook, "https://") {
		fail(w, http.StatusOK, codeBadInput, "webhook: want an http(s) URL")
		return
	}
	if err := p.checkHealth(r.Context(), q.Webhook); err != nil {
		fail(w, http.StatusOK, codeCheckFail, "webhook check failed: "+err.Error())
		return
	}
	p.mu.Lock()
	p.webhook = q.Webhook
	p.mu.Unlock()
	ok(w, nil)
}

// checkHealth posts CHECK_HEALTH to url and wants 200.
func (p *Provider) checkHealth(ctx context.Context, url string) error {
	body, err := json.Marshal(map[string]any{"notifyType": "CHECK_HEALTH", "eventGenerateTime": time.Now().UTC().Format(time.RFC3339),
		"content": map[string]any{"orderNo": "CHECK", "orderStatus": "Test"}})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if p.opts.Sign != nil {
		p.opts.Sign(req, body)
	}
	resp, err := p.opts.Client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return nil
}
