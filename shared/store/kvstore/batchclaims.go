package kvstore

import (
	"context"
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

// ClaimMany claims each id.
func (s *Store) ClaimMany(ctx context.Context, ids []string, owner string, lease time.Duration) ([]store.Claim, error) {
	out := make([]store.Claim, len(ids))
	err := each(ctx, len(ids), func(ctx context.Context, i int) error {
		c, err := s.Claim(ctx, ids[i], owner, lease)
		out[i] = c
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// FinishMany finishes each id.
func (s *Store) FinishMany(ctx context.Context, ids []string, owner string, states []store.ClaimState) ([]error, error) {
	if len(ids) != len(states) {
		return nil, fmt.Errorf("finish %d ids with %d states", len(ids), len(states))
	}
	errs := make([]error, len(ids))
	err := each(ctx, len(ids), func(ctx context.Context, i int) error {
		err := s.Finish(ctx, ids[i], owner, states[i])
		if err == nil || errors.Is(err, store.ErrNotOwner) || !states[i].Finishes() {
			errs[i] = err
			return nil
		}
		return err
	})
	if err != nil {
		return nil, err
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

// AppendNotifications appends the entries of each iccid in order, the
// iccids concurrently.
func (s *Store) AppendNotifications(ctx context.Context, ns []store.Notification) error {
	var iccids []string
	byICCID := map[string][]store.Notification{}
	for _, n := range ns {
		if _, ok := byICCID[n.ICCID]; !ok {
			iccids = append(iccids, n.ICCID)
		}
		byICCID[n.ICCID] = append(byICCID[n.ICCID], n)
	}
	return each(ctx, len(iccids), func(ctx context.Context, i int) error {
		for _, n := range byICCID[iccids[i]] {
			if err := s.AppendNotification(ctx, n); err != nil {
				return err
			}
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
