// Package mergetest is an in-memory merge.State for oracles: the state the
// events should give, computed by the same merge the processor runs, to
// compare with what a store holds after a test.
package mergetest

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/esimflow/esimflow/shared/store"
)

// State keeps orders and profiles in maps. It is not safe for concurrent use.
type State struct {
	Orders   map[string]store.Order
	Profiles map[string]store.Profile
}

// New returns an empty state.
func New() *State {
	return &State{Orders: map[string]store.Order{}, Profiles: map[string]store.Profile{}}
}

// UpdateOrder applies fn to the order (its zero value with the id when new).
func (s *State) UpdateOrder(_ context.Context, id string, fn func(*store.Order) (bool, error)) (store.Order, error) {
	return update(s.Orders, id, store.Order{OrderNo: id}, fn)
}

// UpdateProfile applies fn to the profile (its zero value with the id when new).
func (s *State) UpdateProfile(_ context.Context, id string, fn func(*store.Profile) (bool, error)) (store.Profile, error) {
	return update(s.Profiles, id, store.Profile{ICCID: id}, fn)
}

func update[T any](m map[string]T, id string, zero T, fn func(*T) (bool, error)) (T, error) {
	v, ok := m[id]
	if !ok {
		v = zero
	}
	if _, err := fn(&v); err != nil {
		return v, err
	}
	// Kept as the real stores keep it (JSON), so time zones and nil slices
	// compare equal with what a store returns.
	b, err := json.Marshal(v)
	if err != nil {
		return v, fmt.Errorf("encode %s: %w", id, err)
	}
	var out T
	if err := json.Unmarshal(b, &out); err != nil {
		return v, fmt.Errorf("decode %s: %w", id, err)
	}
	m[id] = out
	return out, nil
}
