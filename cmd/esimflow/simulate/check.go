package simulate

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"reflect"
	"slices"
	"sort"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/esimflow/esimflow/shared/intent"
	"github.com/esimflow/esimflow/shared/store"
)

// StateAPI is what the simulator asks of esimflow's internal API.
type StateAPI interface {
	// Get reads path into out; found is false on a 404.
	Get(ctx context.Context, path string, out any) (found bool, err error)
	// Put sends in as JSON to path.
	Put(ctx context.Context, path string, in any) error
}

// RegisterContacts registers each eSIM's customer under its transaction id,
// as the reseller's checkout does, so that its messages can go out. The
// channel is left to esimflow's routing (console in the all-in-one).
func (s *Sim) RegisterContacts(ctx context.Context, api StateAPI) error {
	for _, e := range s.Plan {
		c := e.Contact
		c.Channels = nil
		body := map[string]any{"name": c.Name, "email": c.Email, "phone": c.Phone, "locale": c.Locale, "iccids": c.ICCIDs}
		if err := api.Put(ctx, "/v1/contacts/"+url.PathEscape(c.TransactionID), body); err != nil {
			return fmt.Errorf("contact %s: %w", c.TransactionID, err)
		}
	}
	return nil
}

// Difference is one way esimflow differs from the truth.
type Difference struct {
	What   string `json:"what"` // order, profile, missing message, duplicate message, unexpected message
	ID     string `json:"id"`
	Got    any    `json:"got,omitempty"`
	Wanted any    `json:"wanted,omitempty"`
}

func (d Difference) String() string {
	if d.Got == nil && d.Wanted == nil {
		return d.What + " " + d.ID
	}
	g, _ := json.Marshal(d.Got)
	w, _ := json.Marshal(d.Wanted)
	return fmt.Sprintf("%s %s:\n    got    %s\n    wanted %s", d.What, d.ID, g, w)
}

// Result is the outcome of a check.
type Result struct {
	// Differences left when the check ended: none when esimflow converged.
	Differences []Difference
	// Took is how long esimflow took to converge (or the timeout).
	Took time.Duration
	// Orders and Profiles checked; Messages expected, of which Optional
	// may rightly be suppressed, Unknowable no one but the provider knew
	// of (see knowable), and Sent went out.
	Orders, Profiles, Messages, Optional, Unknowable, Sent int
}

// checkers is how many eSIMs a check reads at once.
const checkers = 8

// Check polls esimflow's internal API until every order, profile and
// message matches the truth or timeout passes. The final state is the
// plan's whatever was dropped; a message is required only when esimflow
// could know of it: from the webhooks it answered and, when prov is the
// provider API it polls, from what that API showed (knowable).
func (s *Sim) Check(ctx context.Context, api StateAPI, prov *Provider, timeout time.Duration, progress io.Writer) (Result, error) {
	if s.cfg.Provider == Airalo {
		return Result{}, errNoTruth
	}
	t, err := expect(ctx, s.Plan, s.cfg.Rules)
	if err != nil {
		return Result{}, err
	}
	r := Result{Orders: len(t.Orders), Profiles: len(t.Profiles), Messages: len(t.Messages)}
	for _, m := range t.Messages {
		if m.Optional {
			r.Optional++
		}
	}
	sent := make([]int, len(s.Plan)) // expected messages sent, per eSIM
	start := time.Now()
	pending := make([]int, len(s.Plan)) // eSIMs not yet as expected
	for i := range pending {
		pending[i] = i
	}
	byICCID := map[string][]Message{}
	for _, m := range t.Messages {
		byICCID[m.ICCID] = append(byICCID[m.ICCID], m)
	}
	found := make([][]Difference, len(s.Plan))
	var diffs []Difference
	for {
		// A few eSIMs at a time: a round over thousands of them should
		// take about as long as esimflow takes to converge, not longer.
		g, gctx := errgroup.WithContext(ctx)
		g.SetLimit(checkers)
		for _, i := range pending {
			g.Go(func() error {
				d, n, err := t.diff(gctx, api, i, byICCID)
				found[i], sent[i] = d, n
				return err
			})
		}
		if err := g.Wait(); err != nil {
			return Result{}, err
		}
		// After the reads: a state esimflow reached by a poll was shown
		// before it was read.
		known, err := knowable(ctx, s.Plan, s.cfg.Rules, s.known(prov))
		if err != nil {
			return Result{}, err
		}
		for _, i := range pending {
			found[i] = relax(found[i], known)
		}
		diffs = diffs[:0]
		var still []int
		for _, i := range pending {
			if len(found[i]) > 0 {
				still = append(still, i)
				diffs = append(diffs, found[i]...)
			}
		}
		pending = still
		if len(pending) == 0 || time.Since(start) >= timeout || ctx.Err() != nil {
			r.Differences, r.Took = diffs, time.Since(start)
			for _, n := range sent {
				r.Sent += n
			}
			for _, m := range t.Messages {
				if !m.Optional && !known[m.ID] {
					r.Unknowable++
				}
			}
			return r, ctx.Err()
		}
		if progress != nil {
			fmt.Fprintf(progress, "check: %d of %d eSIMs not as expected yet\n", len(pending), len(s.Plan))
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
}

// diff compares eSIM i's order, profile and messages with the truth, and
// counts the expected messages sent.
func (t *truth) diff(ctx context.Context, api StateAPI, i int, messages map[string][]Message) ([]Difference, int, error) {
	var out []Difference
	wantOrder, wantProfile := t.Orders[i], t.Profiles[i]
	var o store.Order
	found, err := api.Get(ctx, "/v1/orders/"+url.PathEscape(wantOrder.OrderNo), &o)
	if err != nil {
		return nil, 0, err
	}
	if got := orderState(o); !found || !reflect.DeepEqual(got, wantOrder) {
		out = append(out, Difference{What: "order", ID: wantOrder.OrderNo, Got: unless(found, got), Wanted: wantOrder})
	}
	var p store.Profile
	found, err = api.Get(ctx, "/v1/profiles/"+url.PathEscape(wantProfile.ICCID), &p)
	if err != nil {
		return nil, 0, err
	}
	if got := profileState(p); !found || !reflect.DeepEqual(activated(got), activated(wantProfile)) {
		out = append(out, Difference{What: "profile", ID: wantProfile.ICCID, Got: unless(found, got), Wanted: wantProfile})
	}
	var log struct {
		Notifications []store.Notification `json:"notifications"`
	}
	if _, err := api.Get(ctx, "/v1/notifications?iccid="+url.QueryEscape(wantProfile.ICCID), &log); err != nil {
		return nil, 0, err
	}
	sent := map[string]map[string]int{} // intent id → channel → sends
	for _, n := range log.Notifications {
		if n.Status == "sent" {
			if sent[n.ID] == nil {
				sent[n.ID] = map[string]int{}
			}
			sent[n.ID][n.Channel]++
		}
	}
	expected := map[string]bool{}
	nsent := 0
	for _, m := range messages[wantProfile.ICCID] {
		expected[m.ID] = true
		if len(sent[m.ID]) > 0 {
			nsent++
		}
		switch {
		case len(sent[m.ID]) == 0 && !m.Optional:
			out = append(out, Difference{What: "missing message", ID: m.ID})
		default:
			for ch, n := range sent[m.ID] {
				if n > 1 {
					out = append(out, Difference{What: "duplicate message", ID: fmt.Sprintf("%s (%d× by %s)", m.ID, n, ch)})
				}
			}
		}
	}
	var extra []string
	for id := range sent {
		if !expected[id] {
			extra = append(extra, id)
		}
	}
	sort.Strings(extra)
	for _, id := range extra {
		out = append(out, Difference{What: "unexpected message", ID: id})
	}
	return out, nsent, nil
}

// known reports whether esimflow can have learnt of eSIM i's event k: its
// webhook was answered 2xx, or prov (nil: not this process's) showed
// what it changed.
func (s *Sim) known(prov *Provider) func(i, k int) bool {
	return func(i, k int) bool {
		return s.byEvent[i][k].delivered.Load() || prov != nil && prov.Shown(i, k)
	}
}

// relax drops from diffs the messages esimflow could not know to send
// (missing, not in known as required) and those it could know of from
// what it learnt although the whole plan does not ask for them.
func relax(diffs []Difference, known map[string]bool) []Difference {
	return slices.DeleteFunc(diffs, func(d Difference) bool {
		req, ok := known[d.ID]
		return d.What == "missing message" && !req || d.What == "unexpected message" && ok
	})
}

// activated spells eSIM Access's IN_USE as the documented ACTIVATED, which
// it is (intent.ActivatedStatuses): the provider's query API says IN_USE of
// an eSIM whose webhook said ACTIVATED, so a state a poll completed may
// spell it either way.
func activated(p ProfileState) ProfileState {
	if slices.Contains(intent.ActivatedStatuses, p.Status) {
		p.Status = intent.ActivatedStatuses[0]
	}
	return p
}

// unless is v when found, else nil (shown as nothing).
func unless(found bool, v any) any {
	if !found {
		return "not found"
	}
	return v
}
