package simulate_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/esimflow/esimflow/cmd/esimflow/provider"
	"github.com/esimflow/esimflow/cmd/esimflow/simulate"
)

func newSim(t *testing.T, esims int) *simulate.Sim {
	t.Helper()
	s, err := simulate.New(simulate.Config{Seed: 3, ESIMs: esims, Rate: 100, Reorder: time.Second, Workers: 2, Attempts: 3,
		Backoff: 10 * time.Millisecond, Webhook: "http://127.0.0.1:1/webhooks/esim"})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// api serves a provider over a plan; rateLimit 1000 keeps the limit out of
// the tests that are not about it.
func api(t *testing.T, s *simulate.Sim, o simulate.ProviderOptions) (*simulate.Provider, *httptest.Server) {
	t.Helper()
	o.AccessCode, o.SecretKey = "ac", "sk"
	if o.RateLimit == 0 {
		o.RateLimit = 1000
	}
	p, err := simulate.NewProvider(s.Plan, o)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(p.Handler())
	t.Cleanup(srv.Close)
	return p, srv
}

type answer struct {
	Success   bool   `json:"success"`
	ErrorCode string `json:"errorCode"`
	ErrorMsg  string `json:"errorMsg"`
	Obj       struct {
		EsimList      []simulate.Profile `json:"esimList"`
		Pager         simulate.Pager     `json:"pager"`
		EsimUsageList []simulate.Usage   `json:"esimUsageList"`
	} `json:"obj"`
}

func call(t *testing.T, url, path, accessCode string, body any) (int, answer, http.Header) {
	t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(http.MethodPost, url+path, bytes.NewReader(b))
	req.Header.Set("RT-AccessCode", accessCode)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var a answer
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &a); err != nil {
		t.Fatalf("%s: %d %s: %v", path, resp.StatusCode, raw, err)
	}
	return resp.StatusCode, a, resp.Header
}

// esim/query finds a subscription by orderNo, iccid and esimTranNo, with
// the activation code GOT_RESOURCE lacks; it knows only what has happened;
// a time range pages through every order.
func TestQuery(t *testing.T) {
	s := newSim(t, 25)
	p, srv := api(t, s, simulate.ProviderOptions{})
	e := s.Plan[4]
	if _, a, _ := call(t, srv.URL, simulate.PathQuery, "ac", map[string]any{"orderNo": e.OrderNo}); !a.Success || len(a.Obj.EsimList) != 0 {
		t.Fatalf("an order that has not happened yet: %+v", a)
	}
	p.Played(4, 0)
	for _, q := range []map[string]any{{"orderNo": e.OrderNo}, {"iccid": e.ICCID}, {"esimTranNo": e.EsimTranNo}} {
		_, a, _ := call(t, srv.URL, simulate.PathQuery, "ac", q)
		if !a.Success || len(a.Obj.EsimList) != 1 {
			t.Fatalf("query %v: %+v", q, a)
		}
		got := a.Obj.EsimList[0]
		if got.ICCID != e.ICCID || got.OrderStatus != "GOT_RESOURCE" || !strings.HasPrefix(got.ActivationCode, "LPA:1$") || got.QRCodeURL == "" {
			t.Errorf("query %v: %+v", q, got)
		}
	}
	p.PlayAll()
	_, a, _ := call(t, srv.URL, simulate.PathQuery, "ac", map[string]any{"iccid": e.ICCID})
	if got := a.Obj.EsimList[0]; got.EsimStatus == "GOT_RESOURCE" && len(e.Events) > 2 {
		t.Errorf("after the whole lifecycle the eSIM is still %s: %+v", got.EsimStatus, got)
	}

	seen := map[string]bool{}
	for page, want := range []int{10, 10, 5, 0} {
		_, a, _ := call(t, srv.URL, simulate.PathQuery, "ac", map[string]any{"startTime": "2026-01-01 00:00:00", "endTime": "2026-12-31 23:59:59",
			"pager": map[string]int{"pageNum": page + 1, "pageSize": 10}})
		if !a.Success || len(a.Obj.EsimList) != want || a.Obj.Pager.Total != 25 || a.Obj.Pager.PageNum != page+1 {
			t.Fatalf("page %d: %d profiles, pager %+v, want %d of 25 (%s)", page+1, len(a.Obj.EsimList), a.Obj.Pager, want, a.ErrorMsg)
		}
		for _, pr := range a.Obj.EsimList {
			if seen[pr.EsimTranNo] {
				t.Fatalf("%s on two pages", pr.EsimTranNo)
			}
			seen[pr.EsimTranNo] = true
		}
	}

	for name, q := range map[string]map[string]any{
		"no filter":      {},
		"page too large": {"iccid": e.ICCID, "pager": map[string]int{"pageNum": 1, "pageSize": simulate.MaxPageSize + 1}},
		"bad range":      {"startTime": "2026-02-01 00:00:00", "endTime": "2026-01-01 00:00:00"},
	} {
		if status, a, _ := call(t, srv.URL, simulate.PathQuery, "ac", q); status != 200 || a.Success || a.ErrorMsg == "" {
			t.Errorf("%s: %d %+v, want a refusal with a message", name, status, a)
		}
	}
	if status, a, _ := call(t, srv.URL, simulate.PathQuery, "wrong", map[string]any{"iccid": e.ICCID}); status != 401 || a.Success {
		t.Errorf("wrong access code: %d %+v", status, a)
	}
}

// usage/query answers up to 10 subscriptions per call and refuses 11.
func TestUsageQuery(t *testing.T) {
	s := newSim(t, 12)
	p, srv := api(t, s, simulate.ProviderOptions{})
	p.PlayAll()
	var trans []string
	for _, e := range s.Plan {
		trans = append(trans, e.EsimTranNo)
	}
	_, a, _ := call(t, srv.URL, simulate.PathUsageQuery, "ac", map[string]any{"esimTranNoList": trans[:simulate.MaxUsageBatch]})
	if !a.Success || len(a.Obj.EsimUsageList) != simulate.MaxUsageBatch {
		t.Fatalf("10 at once: %+v", a)
	}
	_, a, _ = call(t, srv.URL, simulate.PathUsageQuery, "ac", map[string]any{"esimTranNoList": trans[:simulate.MaxUsageBatch+1]})
	if a.Success || !strings.Contains(a.ErrorMsg, "10") {
		t.Fatalf("11 at once: %+v, want a refusal naming the limit", a)
	}
}

// Over 8 calls a second the API answers 429 with Retry-After, as the
// provider does; the calls it answers never exceed the limit's budget.
func TestRateLimit(t *testing.T) {
	s := newSim(t, 3)
	p, srv := api(t, s, simulate.ProviderOptions{RateLimit: 8})
	p.PlayAll()
	start := time.Now()
	answered, limited := 0, 0
	for range 30 {
		status, a, h := call(t, srv.URL, simulate.PathQuery, "ac", map[string]any{"iccid": s.Plan[0].ICCID})
		switch {
		case status == 200 && a.Success:
			answered++
		case status == http.StatusTooManyRequests && !a.Success && h.Get("Retry-After") == "1":
			limited++
		default:
			t.Fatalf("%d %+v", status, a)
		}
	}
	budget := 8 + int(8*time.Since(start).Seconds()) + 1
	if limited == 0 || answered > budget {
		t.Fatalf("%d answered, %d limited in %v: want some limited and at most %d answered", answered, limited, time.Since(start), budget)
	}
	if p.Requests() != 30 {
		t.Errorf("requests counted: %d, want 30", p.Requests())
	}
}

// Slow and failed answers are the shares asked for.
func TestSlowAndFailedAnswers(t *testing.T) {
	s := newSim(t, 3)
	_, srv := api(t, s, simulate.ProviderOptions{ErrorRate: 1})
	if status, a, _ := call(t, srv.URL, simulate.PathQuery, "ac", map[string]any{"iccid": s.Plan[0].ICCID}); status != 503 || a.Success {
		t.Fatalf("error rate 1: %d %+v", status, a)
	}
	_, srv = api(t, s, simulate.ProviderOptions{SlowRate: 1, SlowBy: time.Hour})
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+simulate.PathQuery, strings.NewReader(`{"iccid":"1"}`))
	req.Header.Set("RT-AccessCode", "ac")
	if _, err := http.DefaultClient.Do(req); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("slow rate 1: %v, want no answer before the deadline", err)
	}
}

// webhook/save, called by the CLI's own provider client, checks the URL with
// CHECK_HEALTH and keeps it only when that is answered 200.
func TestWebhookSave(t *testing.T) {
	var health atomic.Value
	var answer atomic.Int32
	answer.Store(200)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		health.Store(string(b) + " sig=" + r.Header.Get("X-Sig"))
		w.WriteHeader(int(answer.Load()))
	}))
	defer hook.Close()
	s := newSim(t, 1)
	p, srv := api(t, s, simulate.ProviderOptions{Sign: func(r *http.Request, _ []byte) { r.Header.Set("X-Sig", "signed") }})

	c, err := provider.New(srv.URL, provider.Credentials{AccessCode: "ac", SecretKey: "sk"}, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.SetWebhook(context.Background(), hook.URL+"/webhooks/esim"); err != nil {
		t.Fatal(err)
	}
	if got := health.Load().(string); !strings.Contains(got, `"notifyType":"CHECK_HEALTH"`) || !strings.HasSuffix(got, "sig=signed") {
		t.Errorf("CHECK_HEALTH sent: %s", got)
	}
	if p.Webhook() != hook.URL+"/webhooks/esim" {
		t.Errorf("webhook saved: %q", p.Webhook())
	}

	answer.Store(401)
	err = c.SetWebhook(context.Background(), hook.URL+"/other")
	var refused *provider.APIError
	if !errors.As(err, &refused) || !strings.Contains(refused.Msg, "HTTP 401") || p.Webhook() != hook.URL+"/webhooks/esim" {
		t.Errorf("a URL that answers 401: %v, saved %q", err, p.Webhook())
	}
	bad, _ := provider.New(srv.URL, provider.Credentials{AccessCode: "ac", SecretKey: "wrong"}, 2*time.Second)
	if err := bad.SetWebhook(context.Background(), hook.URL); !errors.As(err, &refused) || refused.Status != 401 {
		t.Errorf("wrong secret key: %v", err)
	}
}
