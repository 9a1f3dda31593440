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

var (
	_ store.Store        = (*Store)(nil)
	_ store.BatchSeenSet = (*Store)(nil)
)

// maxAttempts bounds WATCH rounds before store.ErrConflict: enough for dozens
// of writers on one key, few enough to fail in well under a second when
// something is wrong.
const maxAttempts = 100

// Options configure a Store.
type Options struct {
	// Namespace goes into every key after "esimflow:"; empty for none.
	Namespace string
	// SeenTTL is how long a marked dedupe key stays seen.
	SeenTTL time.Duration
}

// Store keeps esimflow's state in Redis. It is safe for concurrent use.
type Store struct {
	rdb     redis.UniversalClient
	prefix  string
	seenTTL time.Duration
}

// New returns a store on client; it does not contact the server (see Ping).
func New(client redis.UniversalClient, opts Options) (*Store, error) {
	if client == nil {
		return nil, errors.New("redisstore: client is required")
	}
	if opts.SeenTTL <= 0 {
		return nil, errors.New("redisstore: seen TTL must be positive")
	}
	return &Store{rdb: client, prefix: Prefix(opts.Namespace), seenTTL: opts.SeenTTL}, nil
}

// Prefix returns what every key of a namespace starts with.
func Prefix(namespace string) string {
	if namespace == "" {
		return "esimflow:"
	}
	return "esimflow:" + namespace + ":"
}

func (s *Store) key(kind, id string) string { return s.prefix + "{" + kind + ":" + id + "}" }

// Ping checks that the server answers.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.rdb.Ping(ctx).Err(); err != nil {
		return fmt.Errorf("redis ping: %w", err)
	}
	return nil
}

// Seen reports whether key was marked within the TTL.
func (s *Store) Seen(ctx context.Context, key string) (bool, error) {
	n, err := s.rdb.Exists(ctx, s.key("s", key)).Result()
	if err != nil {
		return false, fmt.Errorf("seen %s: %w", key, err)
	}
	return n == 1, nil
}

// MarkSeen records key with the store's TTL, counted from the last mark.
func (s *Store) MarkSeen(ctx context.Context, key string) error {
	if err := s.rdb.Set(ctx, s.key("s", key), "1", s.seenTTL).Err(); err != nil {
		return fmt.Errorf("mark seen %s: %w", key, err)
	}
	return nil
}

// SeenMany checks every key in one pipeline (a Cluster client splits it by slot).
func (s *Store) SeenMany(ctx context.Context, keys []string) ([]bool, error) {
	cmds := make([]*redis.IntCmd, len(keys))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, k := range keys {
			cmds[i] = p.Exists(ctx, s.key("s", k))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("seen %d keys: %w", len(keys), err)
	}
	out := make([]bool, len(keys))
	for i, c := range cmds {
		out[i] = c.Val() == 1
	}
	return out, nil
}

// MarkSeenMany records every key with the store's TTL in one pipeline.
func (s *Store) MarkSeenMany(ctx context.Context, keys []string) error {
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, k := range keys {
			p.Set(ctx, s.key("s", k), "1", s.seenTTL)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("mark seen %d keys: %w", len(keys), err)
	}
	return nil
}

// UpdateOrder is a compare-and-set read-modify-write of one order.
func (s *Store) UpdateOrder(ctx context.Context, orderNo string, fn func(*store.Order) (bool, error)) (store.Order, error) {
	o, err := update(ctx, s.rdb, s.key("o", orderNo), func() store.Order { return store.Order{OrderNo: orderNo} }, fn)
	if err != nil {
		return store.Order{}, fmt.Errorf("update order %s: %w", orderNo, err)
	}
	return o, nil
}

// UpdateProfile is a compare-and-set read-modify-write of one profile.
func (s *Store) UpdateProfile(ctx context.Context, iccid string, fn func(*store.Profile) (bool, error)) (store.Profile, error) {
	p, err := update(ctx, s.rdb, s.key("p", iccid), func() store.Profile { return store.Profile{ICCID: iccid} }, fn)
	if err != nil {
		return store.Profile{}, fmt.Errorf("update profile %s: %w", iccid, err)
	}
	return p, nil
}

// Order reads an order.
func (s *Store) Order(ctx context.Context, orderNo string) (store.Order, error) {
	var o store.Order
	if err := get(ctx, s.rdb, s.key("o", orderNo), &o); err != nil {
		return store.Order{}, fmt.Errorf("order %s: %w", orderNo, err)
	}
	return o, nil
}

// Profile reads a profile.
func (s *Store) Profile(ctx context.Context, iccid string) (store.Profile, error) {
	var p store.Profile
	if err := get(ctx, s.rdb, s.key("p", iccid), &p); err != nil {
		return store.Profile{}, fmt.Errorf("profile %s: %w", iccid, err)
	}
	return p, nil
}

// get decodes key into v; store.ErrNotFound when the key is absent.
func get(ctx context.Context, rdb redis.Cmdable, key string, v any) error {
	b, err := rdb.Get(ctx, key).Bytes()
	if errors.Is(err, redis.Nil) {
		return store.ErrNotFound
	}
	if err != nil {
		return fmt.Errorf("get %s: %w", key, err)
	}
	if err := store.DecodeState(b, v); err != nil {
		return fmt.Errorf("decode %s: %w", key, err)
	}
	return nil
}

// errLost marks a round whose EXEC found the key changed.
var errLost = errors.New("lost the race")

// update is WATCH, GET, fn, MULTI SET EXEC, repeated while another writer
// changes the key in between. fn gets a fresh copy each round. It returns the
// value as stored (decoded back from what was written, so a later read equals
// it).
func update[T any](ctx context.Context, rdb redis.UniversalClient, key string, zero func() T, fn func(*T) (bool, error)) (T, error) {
	var out, none T
	round := func(tx *redis.Tx) error {
		v := zero()
		if err := get(ctx, tx, key, &v); err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		changed, err := fn(&v)
		if err != nil {
			return err
		}
		if !changed {
			out = v
			return nil
		}
		b, err := store.EncodeState(v)
		if err != nil {
			return fmt.Errorf("encode %s: %w", key, err)
		}
		_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
			p.Set(ctx, key, b, 0)
			return nil
		})
		if errors.Is(err, redis.TxFailedErr) {
			return errLost
		}
		if err != nil {
			return fmt.Errorf("set %s: %w", key, err)
		}
		out = none
		return store.DecodeState(b, &out)
	}
	for attempt := range maxAttempts {
		err := rdb.Watch(ctx, round, key)
		if !errors.Is(err, errLost) {
			if err != nil {
				return none, err
			}
			return out, nil
		}
		if err := backoff(ctx, attempt); err != nil {
			return none, err
		}
	}
	return none, fmt.Errorf("%s: %d rounds lost: %w", key, maxAttempts, store.ErrConflict)
}

// backoff waits a random time below 1ms·2^attempt, capped at 32ms, so writers
// that collided spread out instead of colliding again.
func backoff(ctx context.Context, attempt int) error {
	t := time.NewTimer(time.Duration(rand.Int64N(int64(time.Millisecond) << min(attempt, 5))))
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// claimScript is store.DecideClaim in Lua. It reads before it writes and
// writes only a granted claim, so running it twice for one call (go-redis
// retries after a timeout) at worst answers HeldByOther to the second run,
// and the lease then expires into a takeover: never a second send.
//
// KEYS[1] claim hash. ARGV owner, now (Unix ms), lease until (Unix ms).
// Returns {outcome, state, attempts, takeover (0/1), lease until (Unix ms)}.
var claimScript = redis.NewScript(`
local f = redis.call('HMGET', KEYS[1], 'state', 'owner', 'lease_until_ms', 'attempts')
local state, owner = f[1], f[2] or ''
local until_ms, attempts = tonumber(f[3] or '0'), tonumber(f[4] or '0')
if state == 'sent' or state == 'suppressed' then
  return {'already_done', state, attempts, 0, 0}
end
if state and owner ~= '' and until_ms > tonumber(ARGV[2]) then
  return {'held', state, attempts, 0, until_ms}
end
local takeover = 0
if state and owner ~= '' then takeover = 1 end
attempts = attempts + 1
redis.call('HSET', KEYS[1], 'state', 'claimed', 'owner', ARGV[1], 'lease_until_ms', ARGV[3], 'attempts', attempts)
return {'claimed', 'claimed', attempts, takeover, tonumber(ARGV[3])}
`)

// finishScript: KEYS[1] claim hash; ARGV owner, final state.
// Returns 1 when finished (or already finished with that state), 0 when the
// claim is not owner's.
var finishScript = redis.NewScript(`
local f = redis.call('HMGET', KEYS[1], 'state', 'owner')
if f[1] == ARGV[2] then return 1 end
if f[1] ~= 'claimed' or f[2] ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'state', ARGV[2], 'owner', '')
return 1
`)

// releaseScript: KEYS[1] claim hash; ARGV owner.
// Returns 1 when released, 0 when the claim is not owner's.
var releaseScript = redis.NewScript(`
local f = redis.call('HMGET', KEYS[1], 'state', 'owner')
if f[1] ~= 'claimed' or f[2] ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'owner', '', 'lease_until_ms', '0')
return 1
`)

// Claim takes id for owner, by store.DecideClaim's rules.
func (s *Store) Claim(ctx context.Context, id, owner string, lease time.Duration) (store.Claim, error) {
	now := time.Now()
	res, err := claimScript.Run(ctx, s.rdb, []string{s.key("c", id)},
		owner, now.UnixMilli(), now.Add(lease).UnixMilli()).Slice()
	if err != nil {
		return store.Claim{}, fmt.Errorf("claim %s: %w", id, err)
	}
	c, err := parseClaim(res)
	if err != nil {
		return store.Claim{}, fmt.Errorf("claim %s: %w", id, err)
	}
	return c, nil
}

func parseClaim(res []any) (store.Claim, error) {
	if len(res) != 5 {
		return store.Claim{}, fmt.Errorf("unexpected script reply %v", res)
	}
	outcome, _ := res[0].(string)
	state, _ := res[1].(string)
	attempts, _ := res[2].(int64)
	takeover, _ := res[3].(int64)
	until, _ := res[4].(int64)
	c := store.Claim{Outcome: store.ClaimOutcome(outcome), Attempt: int(attempts), Takeover: takeover == 1}
	switch c.Outcome {
	case store.AlreadyDone:
		c.State = store.ClaimState(state)
	case store.Claimed, store.HeldByOther:
		c.LeaseUntil = time.UnixMilli(until)
	default:
		return store.Claim{}, fmt.Errorf("unexpected outcome %q", outcome)
	}
	return c, nil
}

// Finish records the final state of a claim held by owner, also after its
// lease ran out as long as nobody took it over. Finishing again with the same
// state succeeds, so a retried call is harmless.
func (s *Store) Finish(ctx context.Context, id, owner string, state store.ClaimState) error {
	if !state.Finishes() {
		return fmt.Errorf("finish %s: %q is neither a final state nor dead_lettered", id, state)
	}
	return s.ownerScript(ctx, "finish", finishScript, id, owner, string(state))
}

// Release frees a claim held by owner for the next attempt, keeping the
// attempt count.
func (s *Store) Release(ctx context.Context, id, owner string) error {
	return s.ownerScript(ctx, "release", releaseScript, id, owner)
}

func (s *Store) ownerScript(ctx context.Context, op string, script *redis.Script, id string, args ...any) error {
	n, err := script.Run(ctx, s.rdb, []string{s.key("c", id)}, args...).Int()
	if err != nil {
		return fmt.Errorf("%s claim %s: %w", op, id, err)
	}
	if n != 1 {
		return fmt.Errorf("%s claim %s: %w", op, id, store.ErrNotOwner)
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
	// The open intents, after the log (another slot): an entry that did
	// not make it there is retried with its intent's next entry.
	open := ""
	if store.OpenStatus(n.Status) {
		open = string(b)
	}
	err = openScript.Run(ctx, s.rdb, []string{s.openKey(), s.openKey() + ":t"},
		n.ID, open, n.SentAt.UnixMilli(), store.OpenNotificationLimit).Err()
	if err != nil {
		return fmt.Errorf("open notifications %s: %w", n.ID, err)
	}
	return nil
}

// openKey is the hash of the open intents' entries by intent id; with ":t"
// the sorted set of their ids by SentAt (one hash tag, one slot).
func (s *Store) openKey() string { return s.key("n", "open") }

// openScript sets (ARGV[2] is the entry) or removes (ARGV[2] is empty) the
// open entry of intent ARGV[1], then drops the oldest beyond ARGV[4].
var openScript = redis.NewScript(`
if ARGV[2] == '' then
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('ZREM', KEYS[2], ARGV[1])
  return 0
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
redis.call('ZADD', KEYS[2], ARGV[3], ARGV[1])
local over = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[4])
if over > 0 then
  local old = redis.call('ZRANGE', KEYS[2], 0, over - 1)
  redis.call('ZREMRANGEBYRANK', KEYS[2], 0, over - 1)
  redis.call('HDEL', KEYS[1], unpack(old))
end
return 1
`)

// OpenNotifications returns the open intents' entries, newest first.
func (s *Store) OpenNotifications(ctx context.Context, limit int) ([]store.Notification, error) {
	out := []store.Notification{}
	if limit <= 0 {
		return out, nil
	}
	ids, err := s.rdb.ZRevRange(ctx, s.openKey()+":t", 0, int64(limit)-1).Result()
	if err != nil || len(ids) == 0 {
		if err != nil {
			return nil, fmt.Errorf("open notifications: %w", err)
		}
		return out, nil
	}
	items, err := s.rdb.HMGet(ctx, s.openKey(), ids...).Result()
	if err != nil {
		return nil, fmt.Errorf("open notifications: %w", err)
	}
	for i, it := range items {
		str, ok := it.(string)
		if !ok { // closed between the two reads
			continue
		}
		var n store.Notification
		if err := json.Unmarshal([]byte(str), &n); err != nil {
			return nil, fmt.Errorf("decode open notification %s: %w", ids[i], err)
		}
		out = append(out, n)
	}
	return out, nil
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

// Take counts one call in the budget's current window: INCR of a key per
// window, which expires two windows later; a call past the limit is counted
// too (and refused), which changes nothing, as the window is spent.
func (s *Store) Take(ctx context.Context, budget string, limit int, per time.Duration) (bool, error) {
	if limit < 1 || per <= 0 {
		return false, fmt.Errorf("take from budget %s: want a limit of 1 or more and a positive window", budget)
	}
	key := s.key("r", budget) + ":" + strconv.FormatInt(store.Window(time.Now(), per), 10)
	var n *redis.IntCmd
	_, err := s.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		n = p.Incr(ctx, key)
		p.PExpire(ctx, key, 2*per)
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("take from budget %s: %w", budget, err)
	}
	return n.Val() <= int64(limit), nil
}
