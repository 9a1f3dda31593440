package merge

import (
	"context"
	"fmt"
	"time"

	"github.com/esimflow/esimflow/shared/event"
	"github.com/esimflow/esimflow/shared/store"
)

// State is the part of the store a merge writes.
type State interface {
	UpdateOrder(ctx context.Context, orderNo string, fn func(*store.Order) (bool, error)) (store.Order, error)
	UpdateProfile(ctx context.Context, iccid string, fn func(*store.Profile) (bool, error)) (store.Profile, error)
}

// Apply merges one event into the store: its order first, then its profiles.
// Going through the order lets a profile learn the order's transaction id, and
// an order its profiles, whichever event arrives first: both updates are
// compare-and-set on the order, so of two concurrent events one always sees
// the other. Apply is idempotent; a failed Apply may be retried whole. It
// returns the state the event's profile landed on (the zero Profile for an
// ORDER_STATUS event), which its intents are derived from.
func Apply(ctx context.Context, st State, ev event.Event, at time.Time) (store.Profile, error) {
	switch ev.Type {
	case event.OrderStatus:
		o, err := st.UpdateOrder(ctx, ev.OrderNo, func(o *store.Order) (bool, error) { return Order(o, ev, at), nil })
		if err != nil {
			return store.Profile{}, fmt.Errorf("order %s: %w", ev.OrderNo, err)
		}
		for _, iccid := range o.Profiles {
			if _, err := st.UpdateProfile(ctx, iccid, func(p *store.Profile) (bool, error) {
				return ProfileInOrder(p, ev, o, at), nil
			}); err != nil {
				return store.Profile{}, fmt.Errorf("profile %s of order %s: %w", iccid, ev.OrderNo, err)
			}
		}
	case event.ProfileStatus, event.EsimStatus, event.SmdpEvent, event.DataUsage, event.ValidityUsage:
		var o store.Order
		if ev.OrderNo != "" {
			var err error
			if o, err = st.UpdateOrder(ctx, ev.OrderNo, func(o *store.Order) (bool, error) { return Order(o, ev, at), nil }); err != nil {
				return store.Profile{}, fmt.Errorf("order %s: %w", ev.OrderNo, err)
			}
		}
		p, err := st.UpdateProfile(ctx, ev.ICCID, func(p *store.Profile) (bool, error) {
			changed := Profile(p, ev, at)
			return Link(p, o.OrderNo, o.TransactionID, "", at) || changed, nil
		})
		if err != nil {
			return store.Profile{}, fmt.Errorf("profile %s: %w", ev.ICCID, err)
		}
		return p, nil
	}
	return store.Profile{}, nil
}
