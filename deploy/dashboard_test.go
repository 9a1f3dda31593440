package deploy_test

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/esimflow/esimflow/cmd/esimflow/allinone/allinonetest"
	"github.com/esimflow/esimflow/shared/poll"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape runs the all-in-one in-process, sends it a lifecycle with a
// duplicate, waits until the customer messages are sent, and returns its
// /metrics: every metric family the three services export once they have
// done some work.
func scrape(t *testing.T) map[string]*dto.MetricFamily {
	t.Helper()
	sys := allinonetest.Start(t, map[string]string{"ESIMFLOW_DATA_DIR": t.TempDir()})
	hook, api := sys.Hook, sys.API
	for _, body := range []string{
		`{"eventType":"PROFILE_STATUS","iccid":"8901000000000000001","currentStatus":"ACTIVATED","timestamp":"2026-11-01T08:00:00Z"}`,
		`{"eventType":"PROFILE_STATUS","iccid":"8901000000000000001","currentStatus":"ACTIVATED","timestamp":"2026-11-01T08:00:00Z"}`,
		`{"eventType":"DATA_USAGE","iccid":"8901000000000000001","usedVolume":1073741824,"totalVolume":1073741824,"usagePercent":100,"timestamp":"2026-11-01T09:00:00Z"}`,
	} {
		resp, err := http.Post(hook, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("POST: %d", resp.StatusCode)
		}
	}
	var (
		families map[string]*dto.MetricFamily
		err      error
	)
	poll.Until(t, "two messages sent", func() bool {
		parser := expfmt.NewTextParser(model.UTF8Validation)
		families, err = parser.TextToMetricFamilies(strings.NewReader(get(api + "/metrics")))
		if err != nil {
			return false
		}
		var sent float64
		for _, m := range families["esimflow_notifications_total"].GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "outcome" && l.GetValue() == "sent" {
					sent += m.GetCounter().GetValue()
				}
			}
		}
		return sent == 2
	})
	return families
}

func get(url string) string {
	resp, err := http.Get(url)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return ""
	}
	return string(b)
}

// exposed maps each series name /metrics can carry to its label names: a
// histogram's name is queried through _bucket, _sum and _count.
func exposed(families map[string]*dto.MetricFamily) map[string]map[string]bool {
	out := map[string]map[string]bool{}
	for name, f := range families {
		labels := map[string]bool{}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = true
			}
		}
		names := []string{name}
		if f.GetType() == dto.MetricType_HISTOGRAM {
			names = []string{name + "_bucket", name + "_sum", name + "_count"}
			labels["le"] = true
		}
		for _, n := range names {
			out[n] = labels
		}
	}
	return out
}

var (
	// A metric in PromQL: a name followed by matchers, a range, or neither.
	selector = regexp.MustCompile(`\b([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\{([^}]*)\})?`)
	matcher  = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(=~|!~|!=|=)`)
	grouping = regexp.MustCompile(`\b(?:by|without)\s*\(([^)]*)\)`)
)

// promqlWords are PromQL's functions and keywords: identifiers that are not
// metric names.
var promqlWords = map[string]bool{
	"sum": true, "max": true, "min": true, "avg": true, "count": true, "rate": true, "irate": true,
	"increase": true, "histogram_quantile": true, "by": true, "without": true, "on": true,
	"ignoring": true, "group_left": true, "group_right": true, "bool": true, "and": true, "or": true, "unless": true,
	"offset": true, "topk": true, "bottomk": true, "delta": true, "deriv": true, "abs": true, "clamp_min": true,
}

// TestDashboardMetricsExist reads every query of the Grafana dashboard and
// checks each metric it names is one the services export, with the labels
// the query matches or groups on, scraped from a running all-in-one.
func TestDashboardMetricsExist(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(root, "deploy", "grafana", "dashboards", "esimflow.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		UID    string
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatal(err)
	}
	have := exposed(scrape(t))
	used := map[string]bool{}
	for _, p := range dash.Panels {
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			// Drop label values and ranges, so only names remain to match.
			expr := regexp.MustCompile(`"[^"]*"|\[[^\]]*\]`).ReplaceAllString(tg.Expr, `""`)
			var metrics []string
			for _, m := range selector.FindAllStringSubmatch(expr, -1) {
				name := m[1]
				if promqlWords[name] || isNumber(name) || isLabelInGrouping(expr, name) || isMatcherLabel(expr, name) {
					continue
				}
				metrics = append(metrics, name)
				labels, ok := have[name]
				if !ok {
					t.Errorf("panel %q: %s is not exported (query %s)", p.Title, name, tg.Expr)
					continue
				}
				used[name] = true
				for _, lm := range matcher.FindAllStringSubmatch(m[3], -1) {
					if !labels[lm[1]] {
						t.Errorf("panel %q: %s has no label %q", p.Title, name, lm[1])
					}
				}
			}
			for _, g := range grouping.FindAllStringSubmatch(expr, -1) {
				for _, l := range strings.Split(g[1], ",") {
					l = strings.TrimSpace(l)
					found := false
					for _, name := range metrics {
						found = found || have[name][l]
					}
					if l != "" && !found {
						t.Errorf("panel %q: groups by %q, a label none of %v carries", p.Title, l, metrics)
					}
				}
			}
		}
	}
	// The panels the dashboard is for.
	for _, want := range []string{
		"esimflow_webhooks_received_total", "esimflow_ingest_publish_seconds_bucket", "esimflow_consumer_lag",
		"esimflow_events_processed_total", "esimflow_events_dead_lettered_total", "esimflow_notifications_total",
	} {
		if !used[want] {
			t.Errorf("no panel shows %s", want)
		}
	}
}

func isNumber(s string) bool { return strings.Trim(s, "0123456789.e") == "" }

// isLabelInGrouping reports whether name appears inside a by (...) list.
func isLabelInGrouping(expr, name string) bool {
	for _, g := range grouping.FindAllStringSubmatch(expr, -1) {
		for _, l := range strings.Split(g[1], ",") {
			if strings.TrimSpace(l) == name {
				return true
			}
		}
	}
	return false
}

// isMatcherLabel reports whether name appears as a label inside {...}.
func isMatcherLabel(expr, name string) bool {
	for _, m := range regexp.MustCompile(`\{[^}]*\}`).FindAllString(expr, -1) {
		for _, lm := range matcher.FindAllStringSubmatch(m, -1) {
			if lm[1] == name {
				return true
			}
		}
	}
	return false
}
