package kvstore

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/esimflow/esimflow/shared/store"
	"github.com/esimflow/esimflow/shared/stream"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

var (
	_ store.Store        = (*Store)(nil)
	_ store.BatchSeenSet = (*Store)(nil)
)

// maxAttempts bounds compare-and-set rounds before store.ErrConflict: enough
// for dozens of writers on one key, few enough to fail in well under a second
// when something is wrong.
const maxAttempts = 100

// Options configure a Store.
type Options struct {
	// Namespace prefixes the bucket names; empty for none.
	Namespace string
	// SeenTTL is how long a marked dedupe key stays seen (the seen bucket's max age).
	SeenTTL time.Duration
	// Replicas of both buckets: 0 means 1; 3 on a cluster.
	Replicas int
	// Storage of both buckets; the zero value is file storage.
	Storage jetstream.StorageType
}

// Store keeps esimflow's state in NATS KV. It is safe for concurrent use.
type Store struct {
	state jetstream.KeyValue
	seen  jetstream.KeyValue
	// The buckets' writers, which group-commit concurrent writes.
	stateW, seenW *committer
	nc            *nats.Conn // for group commits
	// atomic says both buckets take atomic batches, so the batch methods
	// group-commit their writes (groupcommit.go).
	atomic bool
}

// Buckets returns the names of the state and seen buckets of a namespace.
func Buckets(namespace string) (state, seen string) {
	prefix := "esimflow_"
	if namespace != "" {
		prefix = namespace + "_esimflow_"
	}
	return prefix + "state", prefix + "seen"
}

// New creates or updates the two buckets and returns the store.
func New(ctx context.Context, js jetstream.JetStream, opts Options) (*Store, error) {
	switch {
	case js == nil:
		return nil, errors.New("kvstore: jetstream is required")
	case opts.SeenTTL <= 0:
		return nil, errors.New("kvstore: seen TTL must be positive")
	case opts.Replicas < 0:
		return nil, errors.New("kvstore: replicas must not be negative")
	}
	stateName, seenName := Buckets(opts.Namespace)
	replicas := max(opts.Replicas, 1)
	state, err := ensureBucket(ctx, js, jetstream.KeyValueConfig{
		Bucket: stateName, Description: "esimflow orders, profiles, notification claims and log",
		History: 1, Storage: opts.Storage, Replicas: replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("kv bucket %s: %w", stateName, err)
	}
	seen, err := ensureBucket(ctx, js, jetstream.KeyValueConfig{
		Bucket: seenName, Description: "esimflow dedupe keys of processed events",
		History: 1, TTL: opts.SeenTTL, Storage: opts.Storage, Replicas: replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("kv bucket %s: %w", seenName, err)
	}
	// The seen-set's TTL is what skips late provider retries; a server that
	// kept another max age would shorten or stretch it silently.
	st, err := seen.Status(ctx)
	if err != nil {
		return nil, fmt.Errorf("kv bucket %s: %w", seenName, err)
	}
	if st.TTL() != opts.SeenTTL {
		return nil, fmt.Errorf("kv bucket %s: server kept TTL %v, asked for %v", seenName, st.TTL(), opts.SeenTTL)
	}
	s := &Store{state: state, seen: seen, nc: js.Conn()}
	s.stateW, s.seenW = newCommitter(s, state), newCommitter(s, seen)
	if stream.AtomicBatches(js.Conn()) {
		s.atomic = true
		for _, b := range []string{stateName, seenName} {
			ok, err := allowAtomic(ctx, js, b)
			if err != nil {
				return nil, fmt.Errorf("kv bucket %s: %w", b, err)
			}
			s.atomic = s.atomic && ok
		}
	}
	return s, nil
}

// ensureBucket creates the bucket, or updates it when its stream differs
// from cfg in what cfg says. A bucket already as asked is left alone:
// CreateOrUpdateKeyValue writes the whole stream config, atomic publishing
// (which KeyValueConfig cannot say) off, so at every start it would turn
// group commit off under the other processes sharing the bucket until New
// turned it on again, their batches refused meanwhile.
func ensureBucket(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	kv, err := js.KeyValue(ctx, cfg.Bucket)
	switch {
	case errors.Is(err, jetstream.ErrBucketNotFound):
		return js.CreateOrUpdateKeyValue(ctx, cfg)
	case err != nil:
		return nil, err
	}
	s, err := js.Stream(ctx, "KV_"+cfg.Bucket)
	if err != nil {
		return nil, err
	}
	if got := s.CachedInfo().Config; got.Description == cfg.Description && got.MaxMsgsPerSubject == int64(max(cfg.History, 1)) &&
		got.MaxAge == cfg.TTL && got.Storage == cfg.Storage && got.Replicas == max(cfg.Replicas, 1) {
		return kv, nil
	}
	return js.CreateOrUpdateKeyValue(ctx, cfg)
}

// Ping asks the server for both buckets' status.
func (s *Store) Ping(ctx context.Context) error {
	for _, kv := range []jetstream.KeyValue{s.state, s.seen} {
		if _, err := kv.Status(ctx); err != nil {
			return fmt.Errorf("kv bucket %s: %w", kv.Bucket(), err)
		}
	}
	return nil
}

// Seen reports whether key was marked within the TTL.
func (s *Store) Seen(ctx context.Context, key string) (bool, error) {
	_, err := s.seen.Get(ctx, token(key))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return false, nil
	default:
		return false, fmt.Errorf("seen %s: %w", key, err)
	}
}

// MarkSeen records key; the bucket's max age expires it, counted from the
// last mark.
func (s *Store) MarkSeen(ctx context.Context, key string) error {
	if _, err := s.seenW.write(ctx, write{key: token(key), value: []byte{'1'}, blind: true}); err != nil {
		return fmt.Errorf("mark seen %s: %w", key, err)
	}
	return nil
}

// SeenMany checks the keys one by one: KV has no pipeline, and the client's
// requests to one server share a connection anyway.
func (s *Store) SeenMany(ctx context.Context, keys []string) ([]bool, error) {
	out := make([]bool, len(keys))
	for i, k := range keys {
		seen, err := s.Seen(ctx, k)
		if err != nil {
			return nil, err
		}
		out[i] = seen
	}
	return out, nil
}

// MarkSeenMany marks the keys in one group commit, or one by one when it
// is not taken.
func (s *Store) MarkSeenMany(ctx context.Context, keys []string) error {
	ws := make([]write, len(keys))
	for i, k := range keys {
		ws[i] = write{key: token(k), value: []byte{'1'}, blind: true}
	}
	if _, err := s.commit(ctx, s.seen, ws); err == nil {
		return nil
	}
	for _, k := range keys {
		if err := s.MarkSeen(ctx, k); err != nil {
			return err
		}
	}
	return nil
}

// UpdateOrder is a compare-and-set read-modify-write of one order.
func (s *Store) UpdateOrder(ctx context.Context, orderNo string, fn func(*store.Order) (bool, error)) (store.Order, error) {
	o, _, err := update(ctx, s.stateW, orderKey(orderNo), func() store.Order { return store.Order{OrderNo: orderNo} }, fn)
	if err != nil {
		return store.Order{}, fmt.Errorf("update order %s: %w", orderNo, err)
	}
	return o, nil
}

// UpdateProfile is a compare-and-set read-modify-write of one profile.
func (s *Store) UpdateProfile(ctx context.Context, iccid string, fn func(*store.Profile) (bool, error)) (store.Profile, error) {
	p, _, err := update(ctx, s.stateW, profileKey(iccid), func() store.Profile { return store.Profile{ICCID: iccid} }, fn)
	if err != nil {
		return store.Profile{}, fmt.Errorf("update profile %s: %w", iccid, err)
	}
	return p, nil
}

// Order reads an order.
func (s *Store) Order(ctx context.Context, orderNo string) (store.Order, error) {
	var o store.Order
	if _, err := get(ctx, s.state, orderKey(orderNo), &o); err != nil {
		return store.Order{}, fmt.Errorf("order %s: %w", orderNo, err)
	}
	return o, nil
}

// Profile reads a profile.
func (s *Store) Profile(ctx context.Context, iccid string) (store.Profile, error) {
	var p store.Profile
	if _, err := get(ctx, s.state, profileKey(iccid), &p); err != nil {
		return store.Profile{}, fmt.Errorf("profile %s: %w", iccid, err)
	}
	return p, nil
}

// Claim takes id for owner by store.DecideClaim's rules; only a granted claim
// is written.
func (s *Store) Claim(ctx context.Context, id, owner string, lease time.Duration) (store.Claim, error) {
	var out store.Claim
	_, _, err := update(ctx, s.stateW, claimKey(id), func() *store.ClaimRecord { return nil },
		func(rec **store.ClaimRecord) (bool, error) {
			c, next, ok := store.DecideClaim(*rec, owner, time.Now(), lease)
			out = c
			if ok {
				*rec = &next
			}
			return ok, nil
		})
	if err != nil {
		return store.Claim{}, fmt.Errorf("claim %s: %w", id, err)
	}
	return out, nil
}

// Finish records the final state of a claim held by owner, also after its
// lease ran out as long as nobody took it over. Finishing again with the same
// state succeeds, so a retried call is harmless.
func (s *Store) Finish(ctx context.Context, id, owner string, state store.ClaimState) error {
	if !state.Finishes() {
		return fmt.Errorf("finish %s: %q is neither a final state nor dead_lettered", id, state)
	}
	return s.changeClaim(ctx, "finish", id, finishRule(owner, state))
}

// finishRule is Finish's change of a claim record.
func finishRule(owner string, state store.ClaimState) func(*store.ClaimRecord) (bool, error) {
	return func(rec *store.ClaimRecord) (bool, error) {
		switch {
		case rec.State == state:
			return false, nil
		case rec.State.Final() || rec.Owner != owner:
			return false, store.ErrNotOwner
		}
		rec.State, rec.Owner = state, ""
		return true, nil
	}
}

// Release frees a claim held by owner for the next attempt, keeping the
// attempt count.
func (s *Store) Release(ctx context.Context, id, owner string) error {
	return s.changeClaim(ctx, "release", id, func(rec *store.ClaimRecord) (bool, error) {
		if rec.State.Final() || rec.Owner != owner {
			return false, store.ErrNotOwner
		}
		rec.Owner, rec.LeaseUntil = "", 0
		return true, nil
	})
}

// changeClaim updates an existing claim record; a missing one is not ours.
func (s *Store) changeClaim(ctx context.Context, op, id string, fn func(*store.ClaimRecord) (bool, error)) error {
	_, _, err := update(ctx, s.stateW, claimKey(id), func() *store.ClaimRecord { return nil }, existing(fn))
	if err != nil {
		return fmt.Errorf("%s claim %s: %w", op, id, err)
	}
	return nil
}

// existing applies fn to a claim record that exists; a missing one is not
// the caller's (store.ErrNotOwner).
func existing(fn func(*store.ClaimRecord) (bool, error)) func(**store.ClaimRecord) (bool, error) {
	return func(rec **store.ClaimRecord) (bool, error) {
		if *rec == nil {
			return false, store.ErrNotOwner
		}
		return fn(*rec)
	}
}

// ClaimState reports where id stands.
func (s *Store) ClaimState(ctx context.Context, id string) (store.ClaimState, error) {
	var rec store.ClaimRecord
	_, err := get(ctx, s.state, claimKey(id), &rec)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return store.ClaimNone, nil
	case err != nil:
		return "", fmt.Errorf("claim state %s: %w", id, err)
	}
	return rec.State, nil
}

// AppendNotification adds an entry to the iccid's log, keeping the newest
// store.NotificationLogLimit.
func (s *Store) AppendNotification(ctx context.Context, n store.Notification) error {
	_, _, err := update(ctx, s.stateW, logKey(n.ICCID), func() []store.Notification { return nil },
		func(log *[]store.Notification) (bool, error) { return appendLog(log, n), nil })
	if err != nil {
		return fmt.Errorf("append notification %s: %w", n.ID, err)
	}
	// The open intents, after the log: an entry that did not make it there
	// is retried with its intent's next entry.
	if err := s.setOpen(ctx, n); err != nil {
		return fmt.Errorf("open notifications %s: %w", n.ID, err)
	}
	return nil
}

// appendLog appends ns to an iccid's log, keeping the newest
// store.NotificationLogLimit; it always changes the log.
func appendLog(log *[]store.Notification, ns ...store.Notification) bool {
	*log = append(*log, ns...)
	if over := len(*log) - store.NotificationLogLimit; over > 0 {
		*log = (*log)[over:]
	}
	return true
}

// setOpen makes n its intent's open entry, or removes the intent's when n
// closes it: a put (the last writer wins, as in Redis), or a delete of the
// revision read, so a newer open entry is never removed.
func (s *Store) setOpen(ctx context.Context, n store.Notification) error {
	key := openKey(n.ID)
	if store.OpenStatus(n.Status) {
		b, err := json.Marshal(n)
		if err != nil {
			return fmt.Errorf("encode: %w", err)
		}
		_, err = s.stateW.write(ctx, write{key: key, value: b, blind: true})
		return err
	}
	entry, err := s.state.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	if err := s.state.Delete(ctx, key, jetstream.LastRevision(entry.Revision())); err != nil && !lostRace(err) {
		return err
	}
	return nil
}

// OpenNotifications returns the open intents' entries, newest first. It
// reads them all, and deletes those beyond store.OpenNotificationLimit
// (Redis drops them as it writes).
func (s *Store) OpenNotifications(ctx context.Context, limit int) ([]store.Notification, error) {
	w, err := s.state.Watch(ctx, openKey("*"), jetstream.IgnoreDeletes())
	if err != nil {
		return nil, fmt.Errorf("open notifications: %w", err)
	}
	defer w.Stop()
	out := []store.Notification{}
	for e := range w.Updates() {
		if e == nil { // all current values read
			break
		}
		var n store.Notification
		if err := json.Unmarshal(e.Value(), &n); err != nil {
			return nil, fmt.Errorf("decode open notification %s: %w", e.Key(), err)
		}
		out = append(out, n)
	}
	if ctx.Err() != nil {
		return nil, fmt.Errorf("open notifications: %w", ctx.Err())
	}
	// Newest first, as Redis's sorted set by SentAt in milliseconds, then
	// by intent id.
	slices.SortFunc(out, func(a, b store.Notification) int {
		if c := cmp.Compare(b.SentAt.UnixMilli(), a.SentAt.UnixMilli()); c != 0 {
			return c
		}
		return strings.Compare(b.ID, a.ID)
	})
	for _, n := range out[min(len(out), store.OpenNotificationLimit):] {
		if err := s.state.Delete(ctx, openKey(n.ID)); err != nil {
			return nil, fmt.Errorf("drop open notification %s: %w", n.ID, err)
		}
	}
	out = out[:min(len(out), store.OpenNotificationLimit)]
	return out[:min(len(out), max(limit, 0))], nil
}

// Notifications returns the iccid's log, oldest first.
func (s *Store) Notifications(ctx context.Context, iccid string) ([]store.Notification, error) {
	log := []store.Notification{}
	if _, err := get(ctx, s.state, logKey(iccid), &log); err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, fmt.Errorf("notifications %s: %w", iccid, err)
	}
	return log, nil
}

// get decodes key into v and returns its revision; store.ErrNotFound when the
// key is absent.
func get(ctx context.Context, kv jetstream.KeyValue, key string, v any) (uint64, error) {
	entry, err := kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0, store.ErrNotFound
	}
	if err != nil {
		return 0, fmt.Errorf("get %s: %w", key, err)
	}
	if err := store.DecodeState(entry.Value(), v); err != nil {
		return 0, fmt.Errorf("decode %s: %w", key, err)
	}
	return entry.Revision(), nil
}

// update is a compare-and-set read-modify-write of key: fn gets a fresh copy
// each round, and a round that lost to another writer is retried. It returns
// the value as stored (decoded back from what was written, so a later read
// equals it) and whether it wrote.
func update[T any](ctx context.Context, w *committer, key string, zero func() T, fn func(*T) (bool, error)) (T, bool, error) {
	var none T
	kv := w.kv
	for attempt := range maxAttempts {
		v := zero()
		rev, err := get(ctx, kv, key, &v)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return none, false, err
		}
		changed, err := fn(&v)
		if err != nil {
			return none, false, err
		}
		if !changed {
			return v, false, nil
		}
		b, err := store.EncodeState(v)
		if err != nil {
			return none, false, fmt.Errorf("encode %s: %w", key, err)
		}
		_, err = w.write(ctx, write{key: key, value: b, rev: rev})
		switch {
		case err == nil:
			var stored T
			if err := store.DecodeState(b, &stored); err != nil {
				return none, false, fmt.Errorf("decode %s: %w", key, err)
			}
			return stored, true, nil
		case !lostRace(err):
			return none, false, fmt.Errorf("put %s: %w", key, err)
		}
		if err := backoff(ctx, attempt); err != nil {
			return none, false, err
		}
	}
	return none, false, fmt.Errorf("%s: %d rounds lost: %w", key, maxAttempts, store.ErrConflict)
}

// lostRace reports whether a write failed only because another writer changed
// the key first. Create reports it as ErrKeyExists; Update as
// ErrKeyRevisionMismatch, which on a single replica also matches ErrKeyExists
// (both are code 10071) but on R3 is code 10164 and matches only itself.
func lostRace(err error) bool {
	return errors.Is(err, jetstream.ErrKeyExists) || errors.Is(err, jetstream.ErrKeyRevisionMismatch)
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

// budgetRecord is a budget's calls in its latest window: one key per
// budget, reset when a call comes in a later window, so nothing piles up.
type budgetRecord struct {
	Window int64 `json:"window"`
	Taken  int   `json:"taken"`
}

// Take counts one call in the budget's current window, compare-and-set on
// the budget's one key.
func (s *Store) Take(ctx context.Context, budget string, limit int, per time.Duration) (bool, error) {
	if limit < 1 || per <= 0 {
		return false, fmt.Errorf("take from budget %s: want a limit of 1 or more and a positive window", budget)
	}
	w := store.Window(time.Now(), per)
	granted := false
	_, _, err := update(ctx, s.stateW, budgetKey(budget), func() budgetRecord { return budgetRecord{} },
		func(r *budgetRecord) (bool, error) {
			granted = false
			switch {
			case r.Window > w:
				// Another host's clock is ahead: its window is the budget's now.
				return false, nil
			case r.Window < w:
				*r = budgetRecord{Window: w}
			case r.Taken >= limit:
				return false, nil
			}
			r.Taken++
			granted = true
			return true, nil
		})
	if err != nil {
		return false, fmt.Errorf("take from budget %s: %w", budget, err)
	}
	return granted, nil
}
