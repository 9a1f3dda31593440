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
	for _, iccid := range old.ICCIDs {
		if !slices.Contains(c.ICCIDs, iccid) {
			if err := s.dropIndex(ctx, iccid, c.TransactionID); err != nil {
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
	entry, err := s.state.Get(ctx, contactIndexKey(iccid))
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return store.Contact{}, fmt.Errorf("contact for iccid %s: %w", iccid, store.ErrNotFound)
	case err != nil:
		return store.Contact{}, fmt.Errorf("contact for iccid %s: %w", iccid, err)
	}
	c, err := s.Contact(ctx, string(entry.Value()))
	if err != nil {
		return store.Contact{}, fmt.Errorf("contact for iccid %s: %w", iccid, err)
	}
	if !slices.Contains(c.ICCIDs, iccid) {
		return store.Contact{}, fmt.Errorf("contact for iccid %s: %w", iccid, store.ErrNotFound)
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
	for _, iccid := range c.ICCIDs {
		if err := s.dropIndex(ctx, iccid, transactionID); err != nil {
			return fmt.Errorf("delete contact %s: %w", transactionID, err)
		}
	}
	return nil
}

// dropIndex deletes iccid's index entry if it still points at transactionID;
// an entry another contact took over in the meantime stays.
func (s *Store) dropIndex(ctx context.Context, iccid, transactionID string) error {
	key := contactIndexKey(iccid)
	entry, err := s.state.Get(ctx, key)
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return nil
	case err != nil:
		return fmt.Errorf("unindex iccid %s: %w", iccid, err)
	case string(entry.Value()) != transactionID:
		return nil
	}
	if err := s.state.Delete(ctx, key, jetstream.LastRevision(entry.Revision())); err != nil && !lostRace(err) {
		return fmt.Errorf("unindex iccid %s: %w", iccid, err)
	}
	return nil
}
