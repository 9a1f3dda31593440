package report_test

import (
	"math"
	"strings"
	"testing"

	"github.com/esimflow/esimflow/bench/report"
)

func TestSummarize(t *testing.T) {
	for _, tc := range []struct {
		in          []float64
		med, lo, hi float64
		runs        int
	}{
		{[]float64{3, 1, 2}, 2, 1, 3, 3},
		{[]float64{4, 1, 3, 2}, 2.5, 1, 4, 4},
		{[]float64{5, math.NaN(), 1}, 3, 1, 5, 2},
		{[]float64{7}, 7, 7, 7, 1},
	} {
		s := report.Summarize(tc.in)
		if s.Median != tc.med || s.Min != tc.lo || s.Max != tc.hi || s.Runs != tc.runs {
			t.Errorf("Summarize(%v) = %+v, want median %v min %v max %v runs %d", tc.in, s, tc.med, tc.lo, tc.hi, tc.runs)
		}
	}
	if s := report.Summarize([]float64{math.NaN()}); s.Runs != 0 || !math.IsNaN(s.Median) {
		t.Errorf("Summarize(NaN) = %+v, want no runs and a NaN median", s)
	}
}

func TestRatio(t *testing.T) {
	a, b := report.Summarize([]float64{9, 10, 11}), report.Summarize([]float64{20})
	if r := report.Ratio(a, b); r != 0.5 {
		t.Errorf("Ratio = %v, want 0.5", r)
	}
	if r := report.Ratio(a, report.Summarize(nil)); !math.IsNaN(r) {
		t.Errorf("Ratio against nothing = %v, want NaN", r)
	}
}

func TestGrowing(t *testing.T) {
	const rate = 5000
	steady := []float64{0, 800, 300, 450, 200, 600, 250, 400, 350, 300}
	rising := []float64{0, 500, 1200, 1900, 2600, 3300, 4000, 4700, 5400, 6100}
	drained := []float64{0, 9000, 8000, 6000, 4000, 2000, 100, 0, 0, 0}
	risingButSmall := []float64{0, 10, 20, 30, 40, 50, 60, 70, 80, 90}
	for name, tc := range map[string]struct {
		lag  []float64
		want bool
	}{
		"steady":          {steady, false},
		"rising":          {rising, true},
		"drained":         {drained, false},
		"rising but tiny": {risingButSmall, false},
		"too few samples": {[]float64{0}, false},
	} {
		if got := report.Growing(tc.lag, rate); got != tc.want {
			t.Errorf("%s: Growing = %v, want %v", name, got, tc.want)
		}
	}
}

func TestGoalVerdict(t *testing.T) {
	for _, tc := range []struct {
		g    report.Goal
		want string
	}{
		{report.Goal{Value: 0.96, Target: 0.95}, "PASS"},
		{report.Goal{Value: 0.9, Target: 0.95}, "MISS"},
		{report.Goal{Value: 38, Target: 40, AtMost: true}, "PASS"},
		{report.Goal{Value: 41, Target: 40, AtMost: true}, "MISS"},
		{report.Goal{Value: 0, Target: 0, AtMost: true}, "PASS"},
		{report.Goal{Value: math.NaN(), Target: 1}, "n/a"},
	} {
		if got := tc.g.Verdict(); got != tc.want {
			t.Errorf("%+v: verdict %s, want %s", tc.g, got, tc.want)
		}
	}
}

func TestParseGoBench(t *testing.T) {
	out := `goos: linux
goarch: amd64
pkg: github.com/esimflow/esimflow/shared/dedupe
cpu: Intel(R) Xeon(R) CPU
BenchmarkKey-2         	 5000000	       231.5 ns/op	      64 B/op	       1 allocs/op
BenchmarkKey-2         	 5000000	       229.5 ns/op	      64 B/op	       1 allocs/op
BenchmarkAppendKey-2   	 9000000	       120.0 ns/op	       0 B/op	       0 allocs/op
PASS
ok  	github.com/esimflow/esimflow/shared/dedupe	3.1s
pkg: github.com/esimflow/esimflow/ingest/verify
BenchmarkSignature/standard-webhooks-2         	  800000	      1500 ns/op	       0 B/op	       0 allocs/op
BenchmarkSignature/header-hex  some log line
`
	got, err := report.ParseGoBench(strings.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("got %d benchmarks, want 3: %+v", len(got), got)
	}
	k := got[0]
	if k.Package != "github.com/esimflow/esimflow/shared/dedupe" || k.Name != "Key" || len(k.NsOp) != 2 || k.AllocsOp[1] != 1 || k.BytesOp[0] != 64 {
		t.Errorf("Key = %+v", k)
	}
	if s := got[2]; s.Name != "Signature/standard-webhooks" || s.NsOp[0] != 1500 || s.AllocsOp[0] != 0 {
		t.Errorf("Signature = %+v", s)
	}
}

func TestMarkdown(t *testing.T) {
	d := report.Document{
		Title:   "esimflow bench",
		Machine: [][2]string{{"CPU", "Test CPU"}},
		Rows: []report.Row{
			{Group: "ingest", Name: "req/s", Unit: "req/s", Values: []float64{12000, 11000, 13000}},
			{Group: "express", Name: "req/s", Unit: "req/s", Values: []float64{math.NaN()}, Note: "node not installed"},
		},
		Goals: []report.Goal{{Name: "ingest ≥ 0.95 × baseline", Value: 0.97, Target: 0.95, Unit: "×"}},
		Micro: []report.Micro{{Package: "p", Name: "Key", NsOp: []float64{200}, AllocsOp: []float64{0}, BytesOp: []float64{0}}},
	}
	md := d.Markdown()
	for _, want := range []string{
		"| CPU | Test CPU |",
		"| ingest | req/s | 12 000 req/s | 11 000–13 000 | 3 |",
		"| express | req/s | n/a | | 0 | node not installed |",
		"| ingest ≥ 0.95 × baseline | 0.97 × | ≥ 0.95 × | PASS |",
		"| p | Key | 200 | 0 | 0 |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
}
