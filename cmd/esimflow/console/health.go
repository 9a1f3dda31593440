package console

import (
	"bytes"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/esimflow/esimflow/shared/admin"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

type statusView = admin.Status

// sample is what the health page read from /metrics and /v1/status at one
// moment; rates are differences between samples.
type sample struct {
	at       time.Time
	webhooks float64            // esimflow_webhooks_received_total, every outcome
	events   float64            // esimflow_events_processed_total, every outcome
	messages map[string]float64 // esimflow_notifications_total by outcome
	lag      map[string]float64 // consumer → pending + ack pending
}

const (
	maxSamples = 60
	// minGap keeps a burst of reloads from turning the charts into noise.
	minGap = 5 * time.Second
	// refresh is how often the health page reloads itself.
	refresh = 10
)

// rates keeps the last samples of the counters the health page charts.
type rates struct {
	mu      sync.Mutex
	samples []sample
}

// add keeps s, replacing the last sample when it is younger than minGap.
func (r *rates) add(s sample) []sample {
	r.mu.Lock()
	defer r.mu.Unlock()
	if n := len(r.samples); n > 0 && s.at.Sub(r.samples[n-1].at) < minGap {
		if n > 1 {
			r.samples[n-1] = s
		}
	} else {
		r.samples = append(r.samples, s)
	}
	if len(r.samples) > maxSamples {
		r.samples = append(r.samples[:0], r.samples[len(r.samples)-maxSamples:]...)
	}
	return append([]sample(nil), r.samples...)
}

type healthView struct {
	Ready     bool
	Checks    []option // name → "ok" or the error
	Streams   []admin.StreamStatus
	Webhooks  series
	Events    series
	Messages  []series // per outcome
	Lag       []series // per consumer
	Samples   int
	Every     int
	StatusErr string
}

// series is one chart: the latest value and a polyline of the history.
type series struct {
	Name   string
	Now    string
	Points string // SVG polyline points in a 120×32 box
	Max    string
}

func (c *Console) health(_ http.ResponseWriter, s *session) (string, view, error) {
	v := healthView{Every: refresh}
	status, body, err := c.call(s, http.MethodGet, "/readyz", nil, nil)
	if err != nil {
		return "", view{}, err
	}
	v.Ready = status == http.StatusOK
	var checks map[string]string
	if jsonDecode(body, &checks) == nil {
		for name, res := range checks {
			if name != "status" {
				v.Checks = append(v.Checks, option{name, res})
			}
		}
		sort.Slice(v.Checks, func(i, j int) bool { return v.Checks[i].Value < v.Checks[j].Value })
	}
	var st statusView
	if err := c.get(s, "/v1/status", &st); err != nil {
		v.StatusErr = err.Error()
	}
	v.Streams = st.Streams

	now := sample{at: c.now(), messages: map[string]float64{}, lag: map[string]float64{}}
	for _, sm := range st.Streams {
		for _, cs := range sm.Consumers {
			now.lag[cs.Name] = float64(cs.Pending) + float64(cs.AckPending)
		}
	}
	if _, body, err := c.call(s, http.MethodGet, "/metrics", nil, nil); err == nil {
		readCounters(body, &now)
	}
	hist := c.rates.add(now)
	v.Samples = len(hist)
	v.Webhooks = rateSeries("webhooks received / min", hist, func(s sample) float64 { return s.webhooks })
	v.Events = rateSeries("events processed / min", hist, func(s sample) float64 { return s.events })
	for _, outcome := range keys(now.messages) {
		v.Messages = append(v.Messages, rateSeries(outcome, hist, func(s sample) float64 { return s.messages[outcome] }))
	}
	for _, name := range keys(now.lag) {
		v.Lag = append(v.Lag, levelSeries(name, hist, func(s sample) float64 { return s.lag[name] }))
	}
	return "health", view{Title: "Health", Nav: "health", Refresh: refresh, Page: &v}, nil
}

// readCounters sums the counters the health page charts.
func readCounters(body []byte, s *sample) {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		return
	}
	sum := func(name string) (n float64) {
		if f := families[name]; f != nil {
			for _, m := range f.GetMetric() {
				n += m.GetCounter().GetValue()
			}
		}
		return n
	}
	s.webhooks, s.events = sum("esimflow_webhooks_received_total"), sum("esimflow_events_processed_total")
	if f := families["esimflow_notifications_total"]; f != nil {
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "outcome" {
					s.messages[l.GetValue()] += m.GetCounter().GetValue()
				}
			}
		}
	}
}

// rateSeries charts a counter as a rate per minute between samples.
func rateSeries(name string, hist []sample, f func(sample) float64) series {
	var ys []float64
	for i := 1; i < len(hist); i++ {
		dt := hist[i].at.Sub(hist[i-1].at).Minutes()
		if dt <= 0 {
			continue
		}
		ys = append(ys, max(f(hist[i])-f(hist[i-1]), 0)/dt)
	}
	s := chart(name, ys)
	if len(ys) == 0 {
		s.Now = "—"
	}
	return s
}

// levelSeries charts a gauge as it was sampled.
func levelSeries(name string, hist []sample, f func(sample) float64) series {
	ys := make([]float64, len(hist))
	for i, h := range hist {
		ys[i] = f(h)
	}
	return chart(name, ys)
}

func chart(name string, ys []float64) series {
	s := series{Name: name, Now: "0", Max: "0"}
	if len(ys) == 0 {
		return s
	}
	top := 0.0
	for _, y := range ys {
		top = max(top, y)
	}
	s.Now, s.Max = num(ys[len(ys)-1]), num(top)
	if top == 0 {
		top = 1
	}
	var b strings.Builder
	step := 120.0 / float64(max(len(ys)-1, 1))
	for i, y := range ys {
		fmt.Fprintf(&b, "%.1f,%.1f ", float64(i)*step, 31-30*y/top)
	}
	s.Points = strings.TrimSpace(b.String())
	return s
}

func num(f float64) string {
	if f == float64(int64(f)) {
		return strconv.FormatInt(int64(f), 10)
	}
	return strconv.FormatFloat(f, 'f', 1, 64)
}

func keys(m map[string]float64) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
