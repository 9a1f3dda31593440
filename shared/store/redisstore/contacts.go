package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/esimflow/esimflow/shared/store"
	"github.com/redis/go-redis/v9"
)

// unindexScript deletes an index entry (iccid or address) only if it still
// points at the contact being replaced or deleted. KEYS[1] index key; ARGV transactionId.
var unindexScript = redis.NewScript(`
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
`)

// PutContact writes the contact, then points its iccids' index entries at it,
// then drops the entries of iccids the previous version listed and this one
// does not (see store.Contacts for why the index may lag). The keys are in
// different slots, so the writes are separate commands.
func (s *Store) PutContact(ctx context.Context, c store.Contact) error {
	old, err := s.Contact(ctx, c.TransactionID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("put contact %s: %w", c.TransactionID, err)
	}
	b, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("encode contact %s: %w", c.TransactionID, err)
	}
	if err := s.rdb.Set(ctx, s.key("k", c.TransactionID), b, 0).Err(); err != nil {
		return fmt.Errorf("put contact %s: %w", c.TransactionID, err)
	}
	for _, iccid := range c.ICCIDs {
		if err := s.rdb.Set(ctx, s.key("ki", iccid), c.TransactionID, 0).Err(); err != nil {
			return fmt.Errorf("index contact %s by iccid %s: %w", c.TransactionID, iccid, err)
		}
	}
	for _, a := range c.Addresses() {
		if err := s.rdb.Set(ctx, s.key("ka", a), c.TransactionID, 0).Err(); err != nil {
			return fmt.Errorf("index contact %s by address: %w", c.TransactionID, err)
		}
	}
	for _, iccid := range old.ICCIDs {
		if !slices.Contains(c.ICCIDs, iccid) {
			if err := s.unindex(ctx, s.key("ki", iccid), c.TransactionID); err != nil {
				return fmt.Errorf("put contact %s: %w", c.TransactionID, err)
			}
		}
	}
	for _, a := range old.Addresses() {
		if !slices.Contains(c.Addresses(), a) {
			if err := s.unindex(ctx, s.key("ka", a), c.TransactionID); err != nil {
				return fmt.Errorf("put contact %s: %w", c.TransactionID, err)
			}
		}
	}
	return nil
}

// Contact reads a contact.
func (s *Store) Contact(ctx context.Context, transactionID string) (store.Contact, error) {
	var c store.Contact
	if err := get(ctx, s.rdb, s.key("k", transactionID), &c); err != nil {
		return store.Contact{}, fmt.Errorf("contact %s: %w", transactionID, err)
	}
	return c, nil
}

// ContactByICCID follows the iccid's index entry to a contact that still
// lists the iccid.
func (s *Store) ContactByICCID(ctx context.Context, iccid string) (store.Contact, error) {
	c, err := s.byIndex(ctx, s.key("ki", iccid), func(c store.Contact) bool { return slices.Contains(c.ICCIDs, iccid) })
	if err != nil {
		return store.Contact{}, fmt.Errorf("contact for iccid %s: %w", iccid, err)
	}
	return c, nil
}

// ContactByAddress follows the address's index entry to a contact that
// still has the address.
func (s *Store) ContactByAddress(ctx context.Context, address string) (store.Contact, error) {
	c, err := s.byIndex(ctx, s.key("ka", store.AddressKey(address)), func(c store.Contact) bool { return c.HasAddress(address) })
	if err != nil {
		return store.Contact{}, fmt.Errorf("contact by address: %w", err)
	}
	return c, nil
}

// byIndex reads the contact an index entry names, if it still matches.
func (s *Store) byIndex(ctx context.Context, key string, matches func(store.Contact) bool) (store.Contact, error) {
	txID, err := s.rdb.Get(ctx, key).Result()
	switch {
	case errors.Is(err, redis.Nil):
		return store.Contact{}, store.ErrNotFound
	case err != nil:
		return store.Contact{}, err
	}
	c, err := s.Contact(ctx, txID)
	if err != nil {
		return store.Contact{}, err
	}
	if !matches(c) {
		return store.Contact{}, store.ErrNotFound
	}
	return c, nil
}

// DeleteContact removes the contact, then its index entries.
func (s *Store) DeleteContact(ctx context.Context, transactionID string) error {
	c, err := s.Contact(ctx, transactionID)
	if err != nil {
		return fmt.Errorf("delete %w", err)
	}
	if err := s.rdb.Del(ctx, s.key("k", transactionID)).Err(); err != nil {
		return fmt.Errorf("delete contact %s: %w", transactionID, err)
	}
	keys := make([]string, 0, len(c.ICCIDs)+2)
	for _, iccid := range c.ICCIDs {
		keys = append(keys, s.key("ki", iccid))
	}
	for _, a := range c.Addresses() {
		keys = append(keys, s.key("ka", a))
	}
	for _, key := range keys {
		if err := s.unindex(ctx, key, transactionID); err != nil {
			return fmt.Errorf("delete contact %s: %w", transactionID, err)
		}
	}
	return nil
}

func (s *Store) unindex(ctx context.Context, key, transactionID string) error {
	if err := unindexScript.Run(ctx, s.rdb, []string{key}, transactionID).Err(); err != nil {
		return fmt.Errorf("unindex %s: %w", key, err)
	}
	return nil
}
