package kvstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"

	"github.com/esimflow/esimflow/shared/store"
	"github.com/nats-io/nats.go/jetstream"
)

// PutContact writes the contact, then points its iccids' index entries at it,
// then drops the entries of iccids the previous version listed and this one
// does not (see store.Contacts for why the index may lag).
func (s *Store) PutContact(ctx context.Context, c store.Contact) error {
	old, err := s.Contact(ctx, c.TransactionID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("put contact %s: %w", c.TransactionID, err)
	}
	b, err := json.Marshal(c)
	if err != nil {
		return fmt.Errorf("encode contact %s: %w", c.TransactionID, err)
	}
	if _, err := s.state.Put(ctx, contactKey(c.TransactionID), b); err != nil {
		return fmt.Errorf("put contact %s: %w", c.TransactionID, err)
	}
	for _, iccid := range c.ICCIDs {
		if _, err := s.state.Put(ctx, contactIndexKey(iccid), []byte(c.TransactionID)); err != nil {
			return fmt.Errorf("index contact %s by iccid %s: %w", c.TransactionID, iccid, err)
		}
	}
	for _, a := range c.Addresses() {
		if _, err := s.state.Put(ctx, contactAddressKey(a), []byte(c.TransactionID)); err != nil {
			return fmt.Errorf("index contact %s by address: %w", c.TransactionID, err)
		}
	}
	for _, iccid := range old.ICCIDs {
		if !slices.Contains(c.ICCIDs, iccid) {
			if err := s.dropIndex(ctx, contactIndexKey(iccid), c.TransactionID); err != nil {
				return fmt.Errorf("put contact %s: %w", c.TransactionID, err)
			}
		}
	}
	for _, a := range old.Addresses() {
		if !slices.Contains(c.Addresses(), a) {
			if err := s.dropIndex(ctx, contactAddressKey(a), c.TransactionID); err != nil {
				return fmt.Errorf("put contact %s: %w", c.TransactionID, err)
			}
		}
	}
	return nil
}

// Contact reads a contact.
func (s *Store) Contact(ctx context.Context, transactionID string) (store.Contact, error) {
	var c store.Contact
	if _, err := get(ctx, s.state, contactKey(transactionID), &c); err != nil {
		return store.Contact{}, fmt.Errorf("contact %s: %w", transactionID, err)
	}
	return c, nil
}

// ContactByICCID follows the iccid's index entry to a contact that still
// lists the iccid.
func (s *Store) ContactByICCID(ctx context.Context, iccid string) (store.Contact, error) {
	c, err := s.byIndex(ctx, contactIndexKey(iccid), func(c store.Contact) bool { return slices.Contains(c.ICCIDs, iccid) })
	if err != nil {
		return store.Contact{}, fmt.Errorf("contact for iccid %s: %w", iccid, err)
	}
	return c, nil
}

// ContactByAddress follows the address's index entry to a contact that
// still has the address.
func (s *Store) ContactByAddress(ctx context.Context, address string) (store.Contact, error) {
	c, err := s.byIndex(ctx, contactAddressKey(store.AddressKey(address)), func(c store.Contact) bool { return c.HasAddress(address) })
	if err != nil {
		return store.Contact{}, fmt.Errorf("contact by address: %w", err)
	}
	return c, nil
}

// byIndex reads the contact an index entry names, if it still matches.
func (s *Store) byIndex(ctx context.Context, key string, matches func(store.Contact) bool) (store.Contact, error) {
	entry, err := s.state.Get(ctx, key)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return store.Contact{}, store.ErrNotFound
	case err != nil:
		return store.Contact{}, err
	}
	c, err := s.Contact(ctx, string(entry.Value()))
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
	if err := s.state.Delete(ctx, contactKey(transactionID)); err != nil {
		return fmt.Errorf("delete contact %s: %w", transactionID, err)
	}
	keys := make([]string, 0, len(c.ICCIDs)+2)
	for _, iccid := range c.ICCIDs {
		keys = append(keys, contactIndexKey(iccid))
	}
	for _, a := range c.Addresses() {
		keys = append(keys, contactAddressKey(a))
	}
	for _, key := range keys {
		if err := s.dropIndex(ctx, key, transactionID); err != nil {
			return fmt.Errorf("delete contact %s: %w", transactionID, err)
		}
	}
	return nil
}

// dropIndex deletes an index entry if it still points at transactionID; an
// entry another contact took over in the meantime stays.
func (s *Store) dropIndex(ctx context.Context, key, transactionID string) error {
	entry, err := s.state.Get(ctx, key)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return nil
	case err != nil:
		return fmt.Errorf("unindex %s: %w", key, err)
	case string(entry.Value()) != transactionID:
		return nil
	}
	if err := s.state.Delete(ctx, key, jetstream.LastRevision(entry.Revision())); err != nil && !lostRace(err) {
		return fmt.Errorf("unindex %s: %w", key, err)
	}
	return nil
}
