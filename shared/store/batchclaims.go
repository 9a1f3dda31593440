package store

import (
	"context"
	"time"
)

// BatchClaims are Claims for a batch of ids, one round trip each call, for
// senders that handle messages in batches (the notifier, docs/adr/0015). Each
// id follows exactly the rules of its single-id method (DecideClaim, Finish).
type BatchClaims interface {
	// ClaimMany is Claim for each of ids, answered in their order. On error
	// some may have been granted, as a Claim whose answer was lost: their
	// leases run out into takeovers.
	ClaimMany(ctx context.Context, ids []string, owner string, lease time.Duration) ([]Claim, error)
	// FinishMany is Finish for each of ids with states[i]: errs[i] is what Finish would have returned for it (ErrNotOwner,
	// or a state Finish does not take), nil when finished. err is the
	// failure of the call itself, after which some may be finished.
	FinishMany(ctx context.Context, ids []string, owner string, states []ClaimState) (errs []error, err error)
	// ClaimStates is ClaimState for each of ids, in their order.
	ClaimStates(ctx context.Context, ids []string) ([]ClaimState, error)
}

// BatchNotificationLog appends a batch's log entries together.
type BatchNotificationLog interface {
	// AppendNotifications is AppendNotification for each of ns; entries of
	// one iccid go in their order. On error some may be appended.
	AppendNotifications(ctx context.Context, ns []Notification) error
}

// BatchContacts read a batch's contacts together.
type BatchContacts interface {
	// ContactMany returns the contacts stored under transactionIDs, by
	// transactionId; one with none is not in the map.
	ContactMany(ctx context.Context, transactionIDs []string) (map[string]Contact, error)
	// ContactManyByICCID is ContactByICCID for each of iccids, by ICCID;
	// one with none is not in the map.
	ContactManyByICCID(ctx context.Context, iccids []string) (map[string]Contact, error)
}

// BatchParking reads what is parked under many keys together.
type BatchParking interface {
	// ParkedMany is Parked for each of keys, in their order.
	ParkedMany(ctx context.Context, keys []string) ([]map[string][]byte, error)
}
