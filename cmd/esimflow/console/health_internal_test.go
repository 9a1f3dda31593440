package console

import (
	"testing"
	"time"
)

// TestRates: counters sampled 30 s apart become rates per minute; a burst
// of reloads replaces the last sample instead of adding noise.
func TestRates(t *testing.T) {
	t0 := time.Date(2026, 11, 1, 8, 0, 0, 0, time.UTC)
	r := &rates{}
	r.add(sample{at: t0, events: 100})
	r.add(sample{at: t0.Add(30 * time.Second), events: 130})
	hist := r.add(sample{at: t0.Add(60 * time.Second), events: 190})
	hist = r.add(sample{at: t0.Add(61 * time.Second), events: 191}) // within minGap: replaces
	if len(hist) != 3 {
		t.Fatalf("%d samples, want 3", len(hist))
	}
	s := rateSeries("events", hist, func(s sample) float64 { return s.events })
	if s.Now != "118.1" || s.Max != "118.1" || s.Points == "" {
		t.Errorf("series %+v, want now 118.1 per minute (61 in 31 s)", s)
	}
	if s := rateSeries("events", hist[:1], func(s sample) float64 { return s.events }); s.Now != "—" {
		t.Errorf("one sample gives a rate: %+v", s)
	}
	for i := range maxSamples + 5 {
		hist = r.add(sample{at: t0.Add(time.Duration(i+2) * time.Minute)})
	}
	if len(hist) != maxSamples {
		t.Errorf("%d samples kept, want %d", len(hist), maxSamples)
	}
}
