package kvstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/esimflow/esimflow/shared/store"
)

// parkingKey holds the messages parked under a key, by id.
func parkingKey(key string) string { return "parked." + token(key) }

// parkedEntry is one parked message; the bucket has no per-key TTL, so the
// entry carries its end, and writes drop the expired.
type parkedEntry struct {
	Body    []byte `json:"body"`
	Expires int64  `json:"expires"` // Unix milliseconds
}

var _ store.Parking = (*Store)(nil)

// Park records body as id's under key until ttl passes.
func (s *Store) Park(ctx context.Context, key, id string, body []byte, ttl time.Duration) error {
	now := time.Now()
	_, _, err := update(ctx, s.stateW, parkingKey(key), func() map[string]parkedEntry { return map[string]parkedEntry{} },
		func(m *map[string]parkedEntry) (bool, error) {
			dropExpired(*m, now)
			(*m)[id] = parkedEntry{Body: body, Expires: now.Add(ttl).UnixMilli()}
			return true, nil
		})
	if err != nil {
		return fmt.Errorf("park %s under %s: %w", id, key, err)
	}
	return nil
}

// Parked returns the bodies parked under key that have not expired.
func (s *Store) Parked(ctx context.Context, key string) (map[string][]byte, error) {
	m := map[string]parkedEntry{}
	if _, err := get(ctx, s.state, parkingKey(key), &m); err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("parked under %s: %w", key, err)
	}
	dropExpired(m, time.Now())
	out := make(map[string][]byte, len(m))
	for id, e := range m {
		out[id] = e.Body
	}
	return out, nil
}

// Unpark removes ids from key.
func (s *Store) Unpark(ctx context.Context, key string, ids ...string) error {
	now := time.Now()
	_, _, err := update(ctx, s.stateW, parkingKey(key), func() map[string]parkedEntry { return map[string]parkedEntry{} },
		func(m *map[string]parkedEntry) (bool, error) {
			n := len(*m)
			for _, id := range ids {
				delete(*m, id)
			}
			dropExpired(*m, now)
			return len(*m) != n, nil
		})
	if err != nil {
		return fmt.Errorf("unpark under %s: %w", key, err)
	}
	return nil
}

func dropExpired(m map[string]parkedEntry, now time.Time) {
	for id, e := range m {
		if e.Expires <= now.UnixMilli() {
			delete(m, id)
		}
	}
}
