package redisstore

import (
	"context"
	"fmt"
	"time"

	"github.com/esimflow/esimflow/shared/store"
	"github.com/redis/go-redis/v9"
)

var _ store.Parking = (*Store)(nil)

// Park records body as id's under key until ttl passes: one hash per key,
// whose expiry each park extends (so an entry may outlive its ttl by the
// later ones', which Parked's callers tolerate: a woken message that is
// done already is acked as such).
func (s *Store) Park(ctx context.Context, key, id string, body []byte, ttl time.Duration) error {
	k := s.key("p", key)
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.HSet(ctx, k, id, body)
		p.PExpire(ctx, k, ttl)
		return nil
	})
	if err != nil {
		return fmt.Errorf("park %s under %s: %w", id, key, err)
	}
	return nil
}

// Parked returns the bodies parked under key.
func (s *Store) Parked(ctx context.Context, key string) (map[string][]byte, error) {
	m, err := s.rdb.HGetAll(ctx, s.key("p", key)).Result()
	if err != nil {
		return nil, fmt.Errorf("parked under %s: %w", key, err)
	}
	out := make(map[string][]byte, len(m))
	for id, body := range m {
		out[id] = []byte(body)
	}
	return out, nil
}

// Unpark removes ids from key.
func (s *Store) Unpark(ctx context.Context, key string, ids ...string) error {
	if len(ids) == 0 {
		return nil
	}
	if err := s.rdb.HDel(ctx, s.key("p", key), ids...).Err(); err != nil {
		return fmt.Errorf("unpark under %s: %w", key, err)
	}
	return nil
}
