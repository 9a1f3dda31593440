package lifecycle_test

import (
	"bytes"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/esimflow/esimflow/shared/event"
	"github.com/esimflow/esimflow/shared/lifecycle"
)

func plan(t *testing.T, seed uint64, o lifecycle.Options) []*lifecycle.ESIM {
	t.Helper()
	es, err := lifecycle.Plan(rand.New(rand.NewPCG(seed, 1)), o)
	if err != nil {
		t.Fatal(err)
	}
	return es
}

var opts = lifecycle.Options{ESIMs: 200, Span: time.Minute, Jitter: 1500 * time.Millisecond, Prefix: "T", ICCIDPrefix: "8999"}

// The same seed gives the same bodies and schedule; another seed another plan.
func TestPlanIsReproducible(t *testing.T) {
	a, b, c := plan(t, 7, opts), plan(t, 7, opts), plan(t, 8, opts)
	same := func(x, y []*lifecycle.ESIM) bool {
		for i := range x {
			if len(x[i].Events) != len(y[i].Events) {
				return false
			}
			for k := range x[i].Events {
				if !bytes.Equal(x[i].Events[k].Body, y[i].Events[k].Body) || x[i].Events[k].At != y[i].Events[k].At {
					return false
				}
			}
		}
		return true
	}
	if !same(a, b) {
		t.Fatal("seed 7 planned twice differs")
	}
	if same(a, c) {
		t.Fatal("seeds 7 and 8 planned the same lifecycles")
	}
}

// Every body decodes to a known event of its eSIM, with a provider time later
// than the one before it; the plan holds every kind of step.
func TestPlanEvents(t *testing.T) {
	kinds := map[string]int{}
	for _, e := range plan(t, 1, opts) {
		if len(e.ICCID) != 19 || e.Contact.TransactionID != e.TransactionID {
			t.Fatalf("eSIM %+v: want a 19-digit ICCID and its contact", e)
		}
		var last time.Time
		for _, p := range e.Events {
			ev, err := event.Decode(p.Body)
			if err != nil || ev.Type == event.Unknown {
				t.Fatalf("%s: %v (%v)", p.Body, err, ev.Type)
			}
			if ev.ICCID != e.ICCID && ev.OrderNo != e.OrderNo {
				t.Fatalf("%s names neither %s nor %s", p.Body, e.ICCID, e.OrderNo)
			}
			if !ev.Timestamp.After(last) {
				t.Fatalf("%s: provider time %v not after %v", p.Body, ev.Timestamp, last)
			}
			last = ev.Timestamp
			kinds[string(ev.Type)+" "+ev.Status]++
			if p.At < 0 || p.At > opts.Span+10*time.Second {
				t.Fatalf("%s sent at %v, outside the span", p.Body, p.At)
			}
		}
	}
	t.Log(kinds)
	for _, k := range []string{"ORDER_STATUS GOT_RESOURCE", "ORDER_STATUS CANCELLED", "PROFILE_STATUS ACTIVATED", "PROFILE_STATUS SUSPENDED", "DATA_USAGE ", "VALIDITY_USAGE "} {
		if kinds[k] == 0 {
			t.Errorf("no %q step in 200 lifecycles", k)
		}
	}
}

func TestPlanRefusesBadOptions(t *testing.T) {
	for name, o := range map[string]lifecycle.Options{
		"no eSIM":          {Span: time.Second, Prefix: "T"},
		"no span":          {ESIMs: 1, Prefix: "T"},
		"letters in ICCID": {ESIMs: 1, Span: time.Second, Prefix: "T", ICCIDPrefix: "89a"},
		"no prefix":        {ESIMs: 1, Span: time.Second},
	} {
		if _, err := lifecycle.Plan(rand.New(rand.NewPCG(1, 1)), o); err == nil {
			t.Errorf("%s: planned", name)
		}
	}
}
