package reconcile_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/esimflow/esimflow/processor/reconcile"
	"github.com/esimflow/esimflow/shared/config"
	"github.com/esimflow/esimflow/shared/redistest"
	"github.com/esimflow/esimflow/shared/store/redisstore"
	"github.com/esimflow/esimflow/shared/stream"
	"github.com/esimflow/esimflow/shared/testns"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// provider is a loopback eSIM Access query API that answers pages of
// orders and counts the calls of each second, refusing (429) beyond its
// limit as the provider does.
type provider struct {
	limit, orders int
	mu            sync.Mutex
	perSecond     map[int64]int
	refused       int
}

func (p *provider) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var q struct {
		Pager struct{ PageNum, PageSize int } `json:"pager"`
	}
	body, _ := io.ReadAll(r.Body)
	_ = json.Unmarshal(body, &q)
	p.mu.Lock()
	sec := time.Now().Unix()
	p.perSecond[sec]++
	over := p.perSecond[sec] > p.limit
	if over {
		p.refused++
	}
	p.mu.Unlock()
	if over || r.Header.Get("RT-Signature") == "" {
		w.Header().Set("Retry-After", "1")
		w.WriteHeader(http.StatusTooManyRequests)
		_, _ = io.WriteString(w, `{"success":false,"errorCode":"000429","errorMsg":"too many requests"}`)
		return
	}
	var list []reconcile.Profile
	for i := (q.Pager.PageNum - 1) * q.Pager.PageSize; i < min(p.orders, q.Pager.PageNum*q.Pager.PageSize); i++ {
		list = append(list, reconcile.Profile{OrderNo: fmt.Sprintf("O%d", i), ICCID: fmt.Sprintf("8900%015d", i),
			OrderStatus: "GOT_RESOURCE", EsimStatus: "GOT_RESOURCE", UpdateTime: "2026-01-01T00:00:00Z"})
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"success": true, "errorCode": "0",
		"obj": map[string]any{"esimList": list, "pager": map[string]int{"pageNum": q.Pager.PageNum, "pageSize": q.Pager.PageSize, "total": p.orders}}})
}

// unused is the publisher of reconcilers that must publish nothing: every
// order differs, but none is silent for the hour-long stale threshold.
type unused struct{ t *testing.T }

func (u unused) PublishMsg(context.Context, *nats.Msg, ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	u.t.Error("published before the stale threshold")
	return &jetstream.PubAck{}, nil
}

// Three reconcilers sweeping the same account at once, each as fast as it
// can, keep to the budget they share through the store: the provider
// (limit 8 per calendar second here, stricter than a bucket) refuses none.
func TestThreeInstancesKeepTheProvidersLimit(t *testing.T) {
	client := redistest.Client(t)
	ns := testns.New(t)
	redistest.RemovePrefix(t, client, ns)
	st, err := redisstore.New(client, redisstore.Options{Namespace: ns, SeenTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	prov := &provider{limit: 8, orders: 1500, perSecond: map[int64]int{}}
	srv := httptest.NewServer(prov)
	defer srv.Close()
	cfg := config.Reconcile{URL: srv.URL, AccessCode: "acct", Secret: "s", Stale: time.Hour, Interval: time.Minute, Lookback: time.Hour, Rate: 4}

	var wg sync.WaitGroup
	for i := range 3 {
		r, err := reconcile.New(cfg, reconcile.Deps{Store: st, Publisher: unused{t}, Names: stream.NewNames(ns), Owner: fmt.Sprint("instance", i),
			Registerer: prometheus.NewRegistry(), Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			if err := r.Sweep(t.Context()); err != nil {
				t.Errorf("instance %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	prov.mu.Lock()
	defer prov.mu.Unlock()
	calls, most := 0, 0
	for _, n := range prov.perSecond {
		calls += n
		most = max(most, n)
	}
	if want := 3 * 15; calls != want || prov.refused > 0 {
		t.Errorf("%d calls, %d refused; want %d (15 pages each), none refused", calls, prov.refused, want)
	}
	t.Logf("%d calls over %d seconds, at most %d in one second, %d refused", calls, len(prov.perSecond), most, prov.refused)
}
