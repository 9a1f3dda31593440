package simulate

import (
	"context"
	"fmt"
	"time"

	"github.com/esimflow/esimflow/processor/merge"
	"github.com/esimflow/esimflow/processor/merge/mergetest"
	"github.com/esimflow/esimflow/shared/event"
	"github.com/esimflow/esimflow/shared/intent"
	"github.com/esimflow/esimflow/shared/lifecycle"
	"github.com/esimflow/esimflow/shared/store"
)

// Expected is what esimflow must hold and have sent once every webhook of
// a plan is in: each eSIM's final state and each customer message.
type Expected struct {
	Orders   []OrderState   `json:"orders"`
	Profiles []ProfileState `json:"profiles"`
	Messages []Message      `json:"messages"`
}

// OrderState is the part of an order's state the provider's lifecycle
// decides (not when esimflow stored it).
type OrderState struct {
	OrderNo  string   `json:"orderNo"`
	Status   string   `json:"status"`
	Profiles []string `json:"profiles"`
}

// ProfileState is the part of a profile's state the lifecycle decides.
type ProfileState struct {
	ICCID        string    `json:"iccid"`
	OrderNo      string    `json:"orderNo,omitempty"`
	Status       string    `json:"status"`
	Bundle       string    `json:"bundle,omitempty"`
	UsedVolume   int64     `json:"usedVolume"`
	TotalVolume  int64     `json:"totalVolume"`
	UsagePercent float64   `json:"usagePercent"`
	ExpiresAt    time.Time `json:"expiresAt,omitzero"`
}

// Message is one customer message the lifecycle asks for, by its intent id.
// Optional is set on a warning esimflow may rightly not send
// (intent.Optional): one a higher threshold suppresses, or one about a
// bundle or period replaced since — reordered webhooks decide whether it
// goes out.
type Message struct {
	ID       string      `json:"id"`
	Kind     intent.Kind `json:"kind"`
	ICCID    string      `json:"iccid"`
	Optional bool        `json:"optional,omitempty"`
}

// truth is an Expected as the check reads it. The intents of a set of
// events do not depend on the order they are merged in (docs/adr/0008), so
// a message outside it is unexpected, whatever order esimflow saw.
type truth struct {
	Expected
}

// Expect computes what esimflow must end with once every event of plan is
// in, with the processor's own merge and intent rules applied to each
// lifecycle in the order it happened: the order-independence esimflow
// promises is what a check then holds it to.
func Expect(ctx context.Context, plan []*lifecycle.ESIM, rules intent.Rules) (Expected, error) {
	t, err := expect(ctx, plan, rules)
	return t.Expected, err
}

func expect(ctx context.Context, plan []*lifecycle.ESIM, rules intent.Rules) (*truth, error) {
	t := &truth{}
	// A reused ICCID's profile is checked as its own lifecycle left it.
	st, intents, order, err := fold(ctx, plan, rules, nil, func(i int, st *mergetest.State) {
		t.Orders = append(t.Orders, orderState(st.Orders[plan[i].OrderNo]))
		t.Profiles = append(t.Profiles, profileState(st.Profiles[plan[i].ICCID]))
	})
	if err != nil {
		return nil, err
	}
	for _, id := range order {
		in := intents[id]
		t.Messages = append(t.Messages, Message{ID: id, Kind: in.Kind, ICCID: in.ICCID, Optional: intent.Optional(in, intents, st.Profiles[in.ICCID])})
	}
	return t, nil
}

// knowable returns the messages esimflow can know to send when it learns
// only of the events known(i, k) says it could (a webhook answered, or
// what a poll of the provider's API showed): a warning whose webhook was
// dropped and whose bundle was replaced before any poll saw it is known
// to no one but the provider. Messages esimflow may rightly not send
// (intent.Optional) are left out.
func knowable(ctx context.Context, plan []*lifecycle.ESIM, rules intent.Rules, known func(i, k int) bool) (map[string]bool, error) {
	st, intents, _, err := fold(ctx, plan, rules, known, nil)
	if err != nil {
		return nil, err
	}
	out := make(map[string]bool, len(intents))
	for id, in := range intents {
		out[id] = !intent.Optional(in, intents, st.Profiles[in.ICCID])
	}
	return out, nil
}

// fold merges the events of plan that keep allows (nil: all), each
// lifecycle in the order it happened, calls done (when set) after each
// lifecycle, and returns the state and the intents the merges land, with
// their ids in the order first landed.
func fold(ctx context.Context, plan []*lifecycle.ESIM, rules intent.Rules, keep func(i, k int) bool,
	done func(i int, st *mergetest.State)) (*mergetest.State, map[string]intent.Intent, []string, error) {
	st := mergetest.New()
	intents := map[string]intent.Intent{}
	var order []string
	for i, e := range plan {
		for k, p := range e.Events {
			if keep != nil && !keep(i, k) {
				continue
			}
			ev, err := event.Decode(p.Body)
			if err != nil {
				return nil, nil, nil, fmt.Errorf("plan event %s: %w", p.Body, err)
			}
			at := ev.Timestamp
			prof, err := merge.Apply(ctx, st, ev, at)
			if err != nil {
				return nil, nil, nil, fmt.Errorf("merge %s: %w", p.Body, err)
			}
			l := merge.Land(prof, ev, at, time.Now())
			for _, in := range intent.For(ev, at, l, rules) {
				if _, ok := intents[in.ID]; !ok {
					order = append(order, in.ID)
				}
				intents[in.ID] = in
			}
		}
		if done != nil {
			done(i, st)
		}
	}
	return st, intents, order, nil
}

func orderState(o store.Order) OrderState {
	return OrderState{OrderNo: o.OrderNo, Status: o.Status, Profiles: o.Profiles}
}

func profileState(p store.Profile) ProfileState {
	s := ProfileState{ICCID: p.ICCID, OrderNo: p.OrderNo, Status: p.Status, Bundle: p.Bundle,
		UsedVolume: p.UsedVolume, TotalVolume: p.TotalVolume, UsagePercent: p.UsagePercent}
	if p.Validity != nil {
		s.ExpiresAt = p.Validity.ExpiresAt.UTC()
	}
	return s
}
