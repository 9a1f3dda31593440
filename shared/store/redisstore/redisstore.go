// Package redisstore is the Store on Redis, for production: go-redis v9's
// UniversalClient, so a single node, Sentinel or Cluster.
//
// Keys are "esimflow:<namespace>:" (or "esimflow:" without a namespace)
// followed by a kind and the id inside a hash tag, so every operation touches
// one slot: {o:<orderNo>}, {p:<iccid>}, {c:<intent id>}, {l:<iccid>}, and
// seen:{<dedupe key>}. Orders and profiles are JSON strings updated with
// WATCH/MULTI compare-and-set; claims are hashes changed by Lua scripts that
// check before they write, so a script go-redis re-runs after a timeout does
// no harm, and that are run through Script.Run, which survives a lost script
// cache. The server must run with maxmemory-policy noeviction: seen and claim
// keys must not be evicted.
package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"

	"github.com/esimflow/esimflow/shared/store"
	"github.com/redis/go-redis/v9"
)

var _ store.Store = (*Store)(nil)

// maxAttempts bounds compare-and-set retries before ErrConflict.
const maxAttempts = 100

// Options configure a Store.
type Options struct {
	Namespace string
	SeenTTL   time.Duration
}

// Store keeps esimflow's state in Redis.
type Store struct {
	rdb     redis.UniversalClient
	prefix  string
	seenTTL time.Duration
}

// New returns a store on client.
func New(client redis.UniversalClient, opts Options) (*Store, error) {
	if client == nil {
		return nil, errors.New("redisstore: client is required")
	}
	if opts.SeenTTL <= 0 {
		return nil, errors.New("redisstore: seen TTL must be positive")
	}
	prefix := "esimflow:"
	if opts.Namespace != "" {
		prefix += opts.Namespace + ":"
	}
	return &Store{rdb: client, prefix: prefix, seenTTL: opts.SeenTTL}, nil
}

func (s *Store) key(kind, id string) string { return s.prefix + "{" + kind + ":" + id + "}" }

// Ping checks the server answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis: %w", err)
	}
	return nil
}

// Seen reports whether key was marked within the TTL.
func (s *Store) Seen(ctx context.Context, key string) (bool, error) {
	n, err := s.rdb.Exists(ctx, s.prefix+"seen:{"+key+"}").Result()
	if err != nil {
		return false, fmt.Errorf("seen %s: %w", key, err)
	}
	return n == 1, nil
}

// MarkSeen records key with the store's TTL.
func (s *Store) MarkSeen(ctx context.Context, key string) error {
	if err := s.rdb.Set(ctx, s.prefix+"seen:{"+key+"}", "1", s.seenTTL).Err(); err != nil {
		return fmt.Errorf("mark seen %s: %w", key, err)
	}
	return nil
}

// UpdateOrder is a compare-and-set read-modify-write of one order.
func (s *Store) UpdateOrder(ctx context.Context, orderNo string, fn func(*store.Order) (bool, error)) (store.Order, error) {
	return update(ctx, s.rdb, s.key("o", orderNo), func() store.Order { return store.Order{OrderNo: orderNo} }, fn)
}

// UpdateProfile is a compare-and-set read-modify-write of one profile.
func (s *Store) UpdateProfile(ctx context.Context, iccid string, fn func(*store.Profile) (bool, error)) (store.Profile, error) {
	return update(ctx, s.rdb, s.key("p", iccid), func() store.Profile { return store.Profile{ICCID: iccid} }, fn)
}

// Order reads an order.
func (s *Store) Order(ctx context.Context, orderNo string) (store.Order, error) {
	var o store.Order
	return o, get(ctx, s.rdb, s.key("o", orderNo), &o)
}

// Profile reads a profile.
func (s *Store) Profile(ctx context.Context, iccid string) (store.Profile, error) {
	var p store.Profile
	return p, get(ctx, s.rdb, s.key("p", iccid), &p)
}

func get(ctx context.Context, rdb redis.Cmdable, key string, v any) error {
	b, err := rdb.Get(ctx, key).Bytes()
	if errors.Is(err, redis.Nil) {
		return fmt.Errorf("%s: %w", key, store.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("get %s: %w", key, err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("decode %s: %w", key, err)
	}
	return nil
}

// update is WATCH, GET, fn, MULTI SET EXEC, retried when the key changed.
func update[T any](ctx context.Context, rdb redis.UniversalClient, key string, zero func() T, fn func(*T) (bool, error)) (T, error) {
	var out T
	for attempt := 0; attempt < maxAttempts; attempt++ {
		err := rdb.Watch(ctx, func(tx *redis.Tx) error {
			v := zero()
			if err := get(ctx, tx, key, &v); err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
			changed, err := fn(&v)
			out = v
			if err != nil || !changed {
				return err
			}
			b, err := json.Marshal(v)
			if err != nil {
				return fmt.Errorf("encode %s: %w", key, err)
			}
			_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.Set(ctx, key, b, 0)
				return nil
			})
			return err
		}, key)
		if !errors.Is(err, redis.TxFailedErr) {
			return out, err
		}
		d := time.Duration(rand.Int64N(int64(time.Millisecond) << min(attempt, 5)))
		select {
		case <-ctx.Done():
			return out, ctx.Err()
		case <-time.After(d):
		}
	}
	var zeroT T
	return zeroT, fmt.Errorf("%s: %w", key, store.ErrConflict)
}

// claimScript applies store.DecideClaim's rules atomically.
// KEYS[1] claim hash; ARGV owner, now (ms), lease (ms).
// Returns {outcome, attempts, takeover, leaseUntil, state}.
var claimScript = redis.NewScript(`
local now, lease = tonumber(ARGV[2]), tonumber(ARGV[3])
local st = redis.call('HGET', KEYS[1], 'state')
if not st then
  redis.call('HSET', KEYS[1], 'state', 'claimed', 'owner', ARGV[1], 'lease', now + lease, 'attempts', 1)
  return {'claimed', 1, 0, now + lease, 'claimed'}
end
local attempts = tonumber(redis.call('HGET', KEYS[1], 'attempts') or '0')
if st == 'sent' or st == 'suppressed' then
  return {'already_done', attempts, 0, 0, st}
end
local owner = redis.call('HGET', KEYS[1], 'owner') or ''
local until_ = tonumber(redis.call('HGET', KEYS[1], 'lease') or '0')
if owner ~= '' and until_ > now then
  return {'held', attempts, 0, until_, st}
end
local takeover = 0
if owner ~= '' then takeover = 1 end
attempts = attempts + 1
redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'lease', now + lease, 'attempts', attempts)
return {'claimed', attempts, takeover, now + lease, 'claimed'}
`)

// finishScript: KEYS[1] claim hash; ARGV owner, final state. 1 done, 0 not owner.
var finishScript = redis.NewScript(`
local st = redis.call('HGET', KEYS[1], 'state')
if st == ARGV[2] then return 1 end
if st ~= 'claimed' or redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'state', ARGV[2], 'owner', '')
return 1
`)

// releaseScript: KEYS[1] claim hash; ARGV owner. 1 released, 0 not owner.
var releaseScript = redis.NewScript(`
if redis.call('HGET', KEYS[1], 'state') ~= 'claimed' or redis.call('HGET', KEYS[1], 'owner') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'owner', '', 'lease', 0)
return 1
`)

// Claim takes id for owner, by store.DecideClaim's rules.
func (s *Store) Claim(ctx context.Context, id, owner string, lease time.Duration) (store.Claim, error) {
	res, err := claimScript.Run(ctx, s.rdb, []string{s.key("c", id)}, owner, time.Now().UnixMilli(), lease.Milliseconds()).Slice()
	if err != nil {
		return store.Claim{}, fmt.Errorf("claim %s: %w", id, err)
	}
	if len(res) != 5 {
		return store.Claim{}, fmt.Errorf("claim %s: unexpected script reply %v", id, res)
	}
	outcome, _ := res[0].(string)
	attempts, _ := res[1].(int64)
	takeover, _ := res[2].(int64)
	until, _ := res[3].(int64)
	state, _ := res[4].(string)
	c := store.Claim{Outcome: store.ClaimOutcome(outcome), Attempt: int(attempts), Takeover: takeover == 1}
	switch c.Outcome {
	case store.AlreadyDone:
		c.State = store.ClaimState(state)
	case store.Claimed, store.HeldByOther:
		c.LeaseUntil = time.UnixMilli(until)
	default:
		return store.Claim{}, fmt.Errorf("claim %s: unexpected outcome %q", id, outcome)
	}
	return c, nil
}

// Finish records the final state of a claim held by owner; finishing again
// with the same state is a no-op.
func (s *Store) Finish(ctx context.Context, id, owner string, state store.ClaimState) error {
	if !state.Final() {
		return fmt.Errorf("finish %s: %q is not a final state", id, state)
	}
	return s.ownerScript(ctx, finishScript, id, owner, string(state))
}

// Release frees a claim held by owner for the next attempt.
func (s *Store) Release(ctx context.Context, id, owner string) error {
	return s.ownerScript(ctx, releaseScript, id, owner)
}

func (s *Store) ownerScript(ctx context.Context, script *redis.Script, id string, args ...any) error {
	n, err := script.Run(ctx, s.rdb, []string{s.key("c", id)}, args...).Int()
	if err != nil {
		return fmt.Errorf("claim %s: %w", id, err)
	}
	if n != 1 {
		return fmt.Errorf("claim %s: %w", id, store.ErrNotOwner)
	}
	return nil
}

// ClaimState reports where id stands.
func (s *Store) ClaimState(ctx context.Context, id string) (store.ClaimState, error) {
	st, err := s.rdb.HGet(ctx, s.key("c", id), "state").Result()
	if errors.Is(err, redis.Nil) {
		return store.ClaimNone, nil
	}
	if err != nil {
		return "", fmt.Errorf("claim state %s: %w", id, err)
	}
	return store.ClaimState(st), nil
}

// AppendNotification adds an entry to the iccid's log, keeping the newest
// store.NotificationLogLimit.
func (s *Store) AppendNotification(ctx context.Context, n store.Notification) error {
	b, err := json.Marshal(n)
	if err != nil {
		return fmt.Errorf("encode notification %s: %w", n.ID, err)
	}
	key := s.key("l", n.ICCID)
	_, err = s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.RPush(ctx, key, b)
		p.LTrim(ctx, key, -store.NotificationLogLimit, -1)
		return nil
	})
	if err != nil {
		return fmt.Errorf("append notification %s: %w", n.ID, err)
	}
	return nil
}

// Notifications returns the iccid's log, oldest first.
func (s *Store) Notifications(ctx context.Context, iccid string) ([]store.Notification, error) {
	items, err := s.rdb.LRange(ctx, s.key("l", iccid), 0, -1).Result()
	if err != nil {
		return nil, fmt.Errorf("notifications %s: %w", iccid, err)
	}
	out := make([]store.Notification, 0, len(items))
	for i, it := range items {
		var n store.Notification
		if err := json.Unmarshal([]byte(it), &n); err != nil {
			return nil, fmt.Errorf("decode notification %s #%s: %w", iccid, strconv.Itoa(i), err)
		}
		out = append(out, n)
	}
	return out, nil
}
