package console_test

import (
	"net/http"
	"strings"
	"testing"
)

// pages are the console's pages with data of the fake: one eSIM with its
// events, a hundred message attempts, two dead letters.
var pages = []struct{ name, path string }{
	{"Search", "/console/search?q=ORD1"},
	{"ESIM", "/console/esims/8901000000000000001"},
	{"Undelivered", "/console/undelivered"},
	{"DeadLetters", "/console/dlq"},
	{"DeadLetter", "/console/dlq/2"},
	{"Health", "/console/health"},
	{"Contact", "/console/contacts/tx-1?redrive=2"},
}

// BenchmarkConsole serves each page for an eSIM with 1 000 events, through
// the admin server's guards and the in-process API calls: the goal is under
// 50 ms a page (docs/adr/0007).
func BenchmarkConsole(b *testing.B) {
	r := newRig(b, token, 1000)
	for _, p := range pages {
		b.Run(p.name, func(b *testing.B) {
			var size int
			for b.Loop() {
				w := r.req("GET", p.path, nil, token, nil)
				if w.Code != http.StatusOK {
					b.Fatalf("%s: %d", p.path, w.Code)
				}
				size = w.Body.Len()
			}
			b.ReportMetric(float64(size), "bytes/page")
		})
	}
}

// TestPageWeight: every page, without data, stays under 100 KB — the
// markup and style a phone downloads before any eSIM's story.
func TestPageWeight(t *testing.T) {
	r := newRig(t, token, 0)
	r.fake.notes = nil // the two dead letters stay, for the pages that show one
	for _, p := range append(pages, struct{ name, path string }{"Login", "/console/login"}) {
		cookie := token
		if p.name == "Login" {
			cookie = ""
		}
		w := r.req("GET", p.path, nil, cookie, nil)
		if w.Code != http.StatusOK {
			t.Fatalf("%s: %d", p.path, w.Code)
		}
		if n := w.Body.Len(); n > 100_000 {
			t.Errorf("%s: %d bytes, want under 100 KB", p.name, n)
		} else {
			t.Logf("%-12s %6d bytes", p.name, n)
		}
		if strings.Contains(w.Body.String(), "http://") || strings.Contains(w.Body.String(), "https://") {
			t.Errorf("%s refers to another site (the console works offline)", p.name)
		}
	}
}
