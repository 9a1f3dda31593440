// Package report turns the harness's raw measurements into the published
// figures: the median of each figure's runs with their min–max, the ratios the
// issue's goals are stated in, the lag-growth test of a sustained step, and the
// Markdown document written to bench/results.
package report

import (
	"fmt"
	"math"
	"slices"
	"strings"
)

// Summary is one figure over its runs.
type Summary struct {
	Median, Min, Max float64
	Runs             int
}

// Summarize returns the median and range of vals; NaN values (a run that could
// not measure the figure) are left out, and an empty input gives Runs == 0.
func Summarize(vals []float64) Summary {
	var v []float64
	for _, x := range vals {
		if !math.IsNaN(x) {
			v = append(v, x)
		}
	}
	if len(v) == 0 {
		return Summary{Median: math.NaN(), Min: math.NaN(), Max: math.NaN()}
	}
	slices.Sort(v)
	n := len(v)
	med := v[n/2]
	if n%2 == 0 {
		med = (v[n/2-1] + v[n/2]) / 2
	}
	return Summary{Median: med, Min: v[0], Max: v[n-1], Runs: n}
}

// Ratio divides two medians; NaN when either is missing or the divisor is 0.
func Ratio(num, den Summary) float64 {
	if num.Runs == 0 || den.Runs == 0 || den.Median == 0 {
		return math.NaN()
	}
	return num.Median / den.Median
}

// Growing reports whether a consumer's lag, sampled once a second while events
// were offered at rate per second, kept rising: the least-squares slope over the
// samples after the first fifth (the warm-up, when the first batches are in
// flight) exceeds 2% of the rate, and the last sample is more than a quarter
// second's worth of events. Either alone is noise: a backlog of a few hundred
// that the consumer works off between batches is not a rising one, and neither
// is a slope that ends near zero.
func Growing(lag []float64, rate float64) bool {
	skip := len(lag) / 5
	s := lag[skip:]
	if len(s) < 2 {
		return false
	}
	return slope(s) > 0.02*rate && s[len(s)-1] > 0.25*rate
}

// slope is the least-squares slope of ys against 0, 1, 2, … (per sample).
func slope(ys []float64) float64 {
	n := float64(len(ys))
	var sx, sy, sxy, sxx float64
	for i, y := range ys {
		x := float64(i)
		sx += x
		sy += y
		sxy += x * y
		sxx += x * x
	}
	den := n*sxx - sx*sx
	if den == 0 {
		return 0
	}
	return (n*sxy - sx*sy) / den
}

// Row is one measured figure of the table.
type Row struct {
	Group  string // the section it belongs to (ingest, processor, …)
	Name   string
	Unit   string
	Values []float64 // one per run; NaN when a run could not measure it
	Note   string    // why it is missing, or what it is compared to
}

// Goal is one of the goals, checked on a ratio or a figure measured in
// the same run.
type Goal struct {
	Name   string
	Value  float64 // NaN when not measured
	Target float64
	AtMost bool   // the goal is Value ≤ Target (RSS, allocations, latency); else Value ≥ Target
	Unit   string // "×" for ratios
	Why    string // reason when Value is NaN
}

// Verdict is PASS, MISS, or n/a when the figure is missing.
func (g Goal) Verdict() string {
	switch {
	case math.IsNaN(g.Value):
		return "n/a"
	case g.AtMost && g.Value <= g.Target, !g.AtMost && g.Value >= g.Target:
		return "PASS"
	default:
		return "MISS"
	}
}

// Micro is one Go benchmark result.
type Micro struct {
	Package  string
	Name     string
	NsOp     []float64
	AllocsOp []float64
	BytesOp  []float64
}

// Document is a whole harness run.
type Document struct {
	Title   string
	Machine [][2]string // label, value
	Setup   []string    // how the figures were measured, one line each
	Rows    []Row
	Goals   []Goal
	Micro   []Micro
	Notes   []string
}

// Markdown renders the document.
func (d Document) Markdown() string {
	var b strings.Builder
	fmt.Fprintf(&b, "# %s\n\n", d.Title)
	b.WriteString("| machine | |\n| --- | --- |\n")
	for _, m := range d.Machine {
		fmt.Fprintf(&b, "| %s | %s |\n", m[0], escape(m[1]))
	}
	if len(d.Setup) > 0 {
		b.WriteString("\n")
		for _, s := range d.Setup {
			fmt.Fprintf(&b, "- %s\n", s)
		}
	}
	b.WriteString("\n## Figures\n\nMedian of the runs, with min–max.\n\n")
	b.WriteString("| stage | figure | median | min–max | runs | note |\n| --- | --- | ---: | ---: | ---: | --- |\n")
	for _, r := range d.Rows {
		s := Summarize(r.Values)
		if s.Runs == 0 {
			fmt.Fprintf(&b, "| %s | %s | n/a | | 0 | %s |\n", r.Group, r.Name, escape(r.Note))
			continue
		}
		fmt.Fprintf(&b, "| %s | %s | %s %s | %s–%s | %d | %s |\n", r.Group, r.Name,
			Format(s.Median), r.Unit, Format(s.Min), Format(s.Max), s.Runs, escape(r.Note))
	}
	b.WriteString("\n## Goals\n\n| goal | measured | target | verdict |\n| --- | ---: | ---: | --- |\n")
	for _, g := range d.Goals {
		op := "≥"
		if g.AtMost {
			op = "≤"
		}
		measured := Format(g.Value) + " " + g.Unit
		if math.IsNaN(g.Value) {
			measured = "n/a"
			if g.Why != "" {
				measured += " (" + escape(g.Why) + ")"
			}
		}
		fmt.Fprintf(&b, "| %s | %s | %s %s %s | %s |\n", g.Name, measured, op, Format(g.Target), g.Unit, g.Verdict())
	}
	if len(d.Micro) > 0 {
		b.WriteString("\n## Micro-benchmarks\n\n`go test -run '^$' -bench … -benchmem`, median of the counts.\n\n")
		b.WriteString("| package | benchmark | ns/op | B/op | allocs/op |\n| --- | --- | ---: | ---: | ---: |\n")
		for _, m := range d.Micro {
			fmt.Fprintf(&b, "| %s | %s | %s | %s | %s |\n", m.Package, m.Name,
				Format(Summarize(m.NsOp).Median), Format(Summarize(m.BytesOp).Median), Format(Summarize(m.AllocsOp).Median))
		}
	}
	if len(d.Notes) > 0 {
		b.WriteString("\n## Notes\n\n")
		for _, n := range d.Notes {
			fmt.Fprintf(&b, "- %s\n", n)
		}
	}
	return b.String()
}

// Format prints a figure with the precision it deserves: thousands grouped for
// large values, three significant digits for small ones.
func Format(v float64) string {
	switch {
	case math.IsNaN(v):
		return "n/a"
	case math.Abs(v) >= 1000:
		return group(int64(math.Round(v)))
	case math.Abs(v) >= 100:
		return fmt.Sprintf("%.0f", v)
	case math.Abs(v) >= 10:
		return fmt.Sprintf("%.1f", v)
	case v == math.Trunc(v):
		return fmt.Sprintf("%.0f", v)
	default:
		return fmt.Sprintf("%.2f", v)
	}
}

func group(n int64) string {
	sign := ""
	if n < 0 {
		sign, n = "-", -n
	}
	s := fmt.Sprint(n)
	var out []byte
	for i, c := range []byte(s) {
		if i > 0 && (len(s)-i)%3 == 0 {
			out = append(out, ' ')
		}
		out = append(out, c)
	}
	return sign + string(out)
}

func escape(s string) string { return strings.ReplaceAll(s, "|", `\|`) }
