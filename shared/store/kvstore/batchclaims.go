package kvstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/esimflow/esimflow/shared/store"
	"golang.org/x/sync/errgroup"
)

var (
	_ store.BatchClaims          = (*Store)(nil)
	_ store.BatchNotificationLog = (*Store)(nil)
	_ store.BatchContacts        = (*Store)(nil)
	_ store.BatchParking         = (*Store)(nil)
)

// NATS KV has no pipeline: the batch methods run the single-id ones, up to
// batchConcurrency at a time, so a batch waits for its slowest round trip
// rather than for the sum of them.
const batchConcurrency = 16

// each runs fn for 0..n-1, batchConcurrency at a time, and returns the
// first error.
func each(ctx context.Context, n int, fn func(ctx context.Context, i int) error) error {
	g, ctx := errgroup.WithContext(ctx)
	g.SetLimit(batchConcurrency)
	for i := range n {
		g.Go(func() error { return fn(ctx, i) })
	}
	return g.Wait()
}

// ClaimMany claims each id: the claims read a few at a time, the granted
// ones written in one group commit (groupcommit.go).
func (s *Store) ClaimMany(ctx context.Context, ids []string, owner string, lease time.Duration) ([]store.Claim, error) {
	out := make([]store.Claim, len(ids))
	keys := make([]string, len(ids))
	for i, id := range ids {
		keys[i] = claimKey(id)
	}
	_, err := updateMany(ctx, s.stateW, keys, func(int) *store.ClaimRecord { return nil },
		func(i int, rec **store.ClaimRecord) (bool, error) {
			c, next, ok := store.DecideClaim(*rec, owner, time.Now(), lease)
			out[i] = c
			if ok {
				*rec = &next
			}
			return ok, nil
		})
	if err != nil {
		return nil, fmt.Errorf("claim %d ids: %w", len(ids), err)
	}
	return out, nil
}

// FinishMany finishes each id as Finish does, the changed records written
// in one group commit.
func (s *Store) FinishMany(ctx context.Context, ids []string, owner string, states []store.ClaimState) ([]error, error) {
	if len(ids) != len(states) {
		return nil, fmt.Errorf("finish %d ids with %d states", len(ids), len(states))
	}
	errs := make([]error, len(ids))
	var keys []string
	var at []int // index in ids of each key
	for i, id := range ids {
		if !states[i].Finishes() {
			errs[i] = fmt.Errorf("finish %s: %q is neither a final state nor dead_lettered", id, states[i])
			continue
		}
		keys, at = append(keys, claimKey(id)), append(at, i)
	}
	ferrs, err := updateMany(ctx, s.stateW, keys, func(int) *store.ClaimRecord { return nil },
		func(j int, rec **store.ClaimRecord) (bool, error) {
			return existing(finishRule(owner, states[at[j]]))(rec)
		})
	if err != nil {
		return nil, fmt.Errorf("finish %d claims: %w", len(keys), err)
	}
	for j, e := range ferrs {
		if e != nil {
			errs[at[j]] = fmt.Errorf("finish claim %s: %w", ids[at[j]], e)
		}
	}
	return errs, nil
}

// ClaimStates reads each claim's state.
func (s *Store) ClaimStates(ctx context.Context, ids []string) ([]store.ClaimState, error) {
	out := make([]store.ClaimState, len(ids))
	err := each(ctx, len(ids), func(ctx context.Context, i int) error {
		st, err := s.ClaimState(ctx, ids[i])
		out[i] = st
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// AppendNotifications appends each iccid's entries to its log in their
// order, the logs written in one group commit; then sets each intent's open
// entry by its last entry here, the open ones in one group commit too.
func (s *Store) AppendNotifications(ctx context.Context, ns []store.Notification) error {
	var iccids []string
	byICCID := map[string][]store.Notification{}
	for _, n := range ns {
		if _, ok := byICCID[n.ICCID]; !ok {
			iccids = append(iccids, n.ICCID)
		}
		byICCID[n.ICCID] = append(byICCID[n.ICCID], n)
	}
	keys := make([]string, len(iccids))
	for i, iccid := range iccids {
		keys[i] = logKey(iccid)
	}
	if _, err := updateMany(ctx, s.stateW, keys, func(int) []store.Notification { return nil },
		func(i int, log *[]store.Notification) (bool, error) {
			return appendLog(log, byICCID[iccids[i]]...), nil
		}); err != nil {
		return fmt.Errorf("append %d notifications: %w", len(ns), err)
	}
	// The open intents, after the logs (see AppendNotification). An
	// intent's earlier entries here are overwritten by its last one, so
	// only the last one is applied.
	last := map[string]int{}
	for i, n := range ns {
		last[n.ID] = i
	}
	var open []write
	var closing []store.Notification
	for i, n := range ns {
		if last[n.ID] != i {
			continue
		}
		if !store.OpenStatus(n.Status) {
			closing = append(closing, n)
			continue
		}
		b, err := json.Marshal(n)
		if err != nil {
			return fmt.Errorf("open notifications %s: encode: %w", n.ID, err)
		}
		open = append(open, write{key: openKey(n.ID), value: b, blind: true})
	}
	if _, err := s.commit(ctx, s.state, open); err != nil {
		for _, w := range open {
			if _, err := s.stateW.write(ctx, w); err != nil {
				return fmt.Errorf("open notifications %s: %w", w.key, err)
			}
		}
	}
	return each(ctx, len(closing), func(ctx context.Context, i int) error {
		if err := s.setOpen(ctx, closing[i]); err != nil {
			return fmt.Errorf("open notifications %s: %w", closing[i].ID, err)
		}
		return nil
	})
}

// ContactMany reads each contact.
func (s *Store) ContactMany(ctx context.Context, transactionIDs []string) (map[string]store.Contact, error) {
	return contactsBy(ctx, transactionIDs, s.Contact)
}

// ParkedMany reads each key's parked bodies.
func (s *Store) ParkedMany(ctx context.Context, keys []string) ([]map[string][]byte, error) {
	out := make([]map[string][]byte, len(keys))
	err := each(ctx, len(keys), func(ctx context.Context, i int) error {
		m, err := s.Parked(ctx, keys[i])
		out[i] = m
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// ContactManyByICCID reads each ICCID's contact, a few at a time.
func (s *Store) ContactManyByICCID(ctx context.Context, iccids []string) (map[string]store.Contact, error) {
	return contactsBy(ctx, iccids, s.ContactByICCID)
}

// contactsBy reads the contact of each of keys with get, a few at a time,
// into a map by key; one with none is left out.
func contactsBy(ctx context.Context, keys []string, get func(context.Context, string) (store.Contact, error)) (map[string]store.Contact, error) {
	found := make([]*store.Contact, len(keys))
	err := each(ctx, len(keys), func(ctx context.Context, i int) error {
		c, err := get(ctx, keys[i])
		switch {
		case errors.Is(err, store.ErrNotFound):
			return nil
		case err != nil:
			return err
		}
		found[i] = &c
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make(map[string]store.Contact, len(keys))
	for i, c := range found {
		if c != nil {
			out[keys[i]] = *c
		}
	}
	return out, nil
}
