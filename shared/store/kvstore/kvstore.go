// Package kvstore is the Store on NATS KV: the embedded default, so the
// all-in-one needs nothing but its own NATS server. Every update is a
// compare-and-set on the key's revision, retried when another writer won.
//
// It uses only what Debian's nats-server 2.9.10 offers: two buckets, one for
// state, claims and the notification log (no TTL), and one for the seen-set
// whose bucket-level max age is the seen TTL (per-key TTLs need 2.11).
//
// Keys are "order.<id>", "profile.<id>", "claim.<id>", "log.<iccid>" and, in
// the seen bucket, "<key>"; ids are escaped so that any string is a valid key:
// letters, digits, '-' and '_' stay as they are, every other byte becomes =XX.
package kvstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/esimflow/esimflow/shared/store"
	"github.com/nats-io/nats.go/jetstream"
)

var _ store.Store = (*Store)(nil)

// maxAttempts bounds compare-and-set retries before ErrConflict.
const maxAttempts = 100

// Options configure a Store.
type Options struct {
	Namespace string
	SeenTTL   time.Duration
	Replicas  int                   // default 1
	Storage   jetstream.StorageType // default file
}

// Store keeps esimflow's state in NATS KV.
type Store struct {
	state jetstream.KeyValue
	seen  jetstream.KeyValue
}

// New creates or updates the buckets and returns the store.
func New(ctx context.Context, js jetstream.JetStream, opts Options) (*Store, error) {
	if js == nil {
		return nil, errors.New("kvstore: jetstream is required")
	}
	if opts.SeenTTL <= 0 {
		return nil, errors.New("kvstore: seen TTL must be positive")
	}
	prefix := "esimflow_"
	if opts.Namespace != "" {
		prefix = opts.Namespace + "_esimflow_"
	}
	replicas := max(opts.Replicas, 1)
	state, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: prefix + "state", Description: "esimflow orders, profiles, claims, notification log",
		History: 1, Storage: opts.Storage, Replicas: replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("kv bucket %sstate: %w", prefix, err)
	}
	seen, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
		Bucket: prefix + "seen", Description: "esimflow processed events' dedupe keys",
		History: 1, TTL: opts.SeenTTL, Storage: opts.Storage, Replicas: replicas,
	})
	if err != nil {
		return nil, fmt.Errorf("kv bucket %sseen: %w", prefix, err)
	}
	return &Store{state: state, seen: seen}, nil
}

// Ping asks the server for the state bucket's status.
func (s *Store) Ping(ctx context.Context) error {
	if _, err := s.state.Status(ctx); err != nil {
		return fmt.Errorf("nats kv: %w", err)
	}
	return nil
}

// Seen reports whether key was marked within the TTL.
func (s *Store) Seen(ctx context.Context, key string) (bool, error) {
	_, err := s.seen.Get(ctx, escape(key))
	switch {
	case err == nil:
		return true, nil
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return false, nil
	default:
		return false, fmt.Errorf("seen %s: %w", key, err)
	}
}

// MarkSeen records key; the bucket's max age expires it.
func (s *Store) MarkSeen(ctx context.Context, key string) error {
	if _, err := s.seen.Put(ctx, escape(key), []byte{'1'}); err != nil {
		return fmt.Errorf("mark seen %s: %w", key, err)
	}
	return nil
}

// UpdateOrder is a compare-and-set read-modify-write of one order.
func (s *Store) UpdateOrder(ctx context.Context, orderNo string, fn func(*store.Order) (bool, error)) (store.Order, error) {
	return update(ctx, s.state, "order."+escape(orderNo), func() store.Order { return store.Order{OrderNo: orderNo} }, fn)
}

// UpdateProfile is a compare-and-set read-modify-write of one profile.
func (s *Store) UpdateProfile(ctx context.Context, iccid string, fn func(*store.Profile) (bool, error)) (store.Profile, error) {
	return update(ctx, s.state, "profile."+escape(iccid), func() store.Profile { return store.Profile{ICCID: iccid} }, fn)
}

// Order reads an order.
func (s *Store) Order(ctx context.Context, orderNo string) (store.Order, error) {
	var o store.Order
	_, err := get(ctx, s.state, "order."+escape(orderNo), &o)
	return o, err
}

// Profile reads a profile.
func (s *Store) Profile(ctx context.Context, iccid string) (store.Profile, error) {
	var p store.Profile
	_, err := get(ctx, s.state, "profile."+escape(iccid), &p)
	return p, err
}

// Claim takes id for owner (store.DecideClaim's rules) with compare-and-set.
func (s *Store) Claim(ctx context.Context, id, owner string, lease time.Duration) (store.Claim, error) {
	var out store.Claim
	_, err := update(ctx, s.state, "claim."+escape(id), func() *store.ClaimRecord { return nil },
		func(rec **store.ClaimRecord) (bool, error) {
			c, next, ok := store.DecideClaim(*rec, owner, time.Now(), lease)
			out = c
			if ok {
				*rec = &next
			}
			return ok, nil
		})
	return out, err
}

// Finish records the final state of a claim held by owner. Finishing again
// with the same state is a no-op, so a retried call succeeds.
func (s *Store) Finish(ctx context.Context, id, owner string, state store.ClaimState) error {
	if !state.Final() {
		return fmt.Errorf("finish %s: %q is not a final state", id, state)
	}
	return s.changeClaim(ctx, id, func(rec *store.ClaimRecord) (bool, error) {
		switch {
		case rec.State == state:
			return false, nil
		case rec.State.Final() || rec.Owner != owner:
			return false, store.ErrNotOwner
		}
		rec.State, rec.Owner = state, ""
		return true, nil
	})
}

// Release frees a claim held by owner for the next attempt.
func (s *Store) Release(ctx context.Context, id, owner string) error {
	return s.changeClaim(ctx, id, func(rec *store.ClaimRecord) (bool, error) {
		if rec.State.Final() || rec.Owner != owner {
			return false, store.ErrNotOwner
		}
		rec.Owner, rec.LeaseUntil = "", 0
		return true, nil
	})
}

// changeClaim updates an existing claim record; a missing one is not ours.
func (s *Store) changeClaim(ctx context.Context, id string, fn func(*store.ClaimRecord) (bool, error)) error {
	_, err := update(ctx, s.state, "claim."+escape(id), func() *store.ClaimRecord { return nil },
		func(rec **store.ClaimRecord) (bool, error) {
			if *rec == nil {
				return false, store.ErrNotOwner
			}
			return fn(*rec)
		})
	if err != nil {
		return fmt.Errorf("claim %s: %w", id, err)
	}
	return nil
}

// ClaimState reports where id stands.
func (s *Store) ClaimState(ctx context.Context, id string) (store.ClaimState, error) {
	var rec store.ClaimRecord
	_, err := get(ctx, s.state, "claim."+escape(id), &rec)
	if errors.Is(err, store.ErrNotFound) {
		return store.ClaimNone, nil
	}
	return rec.State, err
}

// AppendNotification adds an entry to the iccid's log, keeping the newest
// store.NotificationLogLimit.
func (s *Store) AppendNotification(ctx context.Context, n store.Notification) error {
	_, err := update(ctx, s.state, "log."+escape(n.ICCID), func() []store.Notification { return nil },
		func(log *[]store.Notification) (bool, error) {
			*log = append(*log, n)
			if over := len(*log) - store.NotificationLogLimit; over > 0 {
				*log = (*log)[over:]
			}
			return true, nil
		})
	return err
}

// Notifications returns the iccid's log, oldest first.
func (s *Store) Notifications(ctx context.Context, iccid string) ([]store.Notification, error) {
	log := []store.Notification{}
	if _, err := get(ctx, s.state, "log."+escape(iccid), &log); err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	return log, nil
}

// get decodes key into v and returns its revision.
func get(ctx context.Context, kv jetstream.KeyValue, key string, v any) (uint64, error) {
	entry, err := kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0, fmt.Errorf("%s: %w", key, store.ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("get %s: %w", key, err)
	}
	if err := json.Unmarshal(entry.Value(), v); err != nil {
		return 0, fmt.Errorf("decode %s: %w", key, err)
	}
	return entry.Revision(), nil
}

// update runs a compare-and-set read-modify-write of key, retrying when
// another writer changed it in between.
func update[T any](ctx context.Context, kv jetstream.KeyValue, key string, zero func() T, fn func(*T) (bool, error)) (T, error) {
	for attempt := 0; attempt < maxAttempts; attempt++ {
		v := zero()
		rev, err := get(ctx, kv, key, &v)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return v, err
		}
		changed, err := fn(&v)
		if err != nil || !changed {
			return v, err
		}
		b, err := json.Marshal(v)
		if err != nil {
			return v, fmt.Errorf("encode %s: %w", key, err)
		}
		if rev == 0 {
			_, err = kv.Create(ctx, key, b)
		} else {
			_, err = kv.Update(ctx, key, b, rev)
		}
		if err == nil {
			return v, nil
		}
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return v, fmt.Errorf("put %s: %w", key, err)
		}
		if err := backoff(ctx, attempt); err != nil {
			return v, err
		}
	}
	var v T
	return v, fmt.Errorf("%s: %w", key, store.ErrConflict)
}

// backoff waits a little, jittered, so that writers that collided spread out.
func backoff(ctx context.Context, attempt int) error {
	d := time.Duration(rand.Int64N(int64(time.Millisecond) << min(attempt, 5)))
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// escape makes any string a valid KV key token, readably for plain ids.
func escape(id string) string {
	var b strings.Builder
	for i := 0; i < len(id); i++ {
		c := id[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "=%02X", c)
		}
	}
	if b.Len() == 0 {
		return "="
	}
	return b.String()
}
