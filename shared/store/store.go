// Package store declares what esimflow keeps besides the event log: the
// processor's seen-set, order and profile state, customer contacts,
// notification claims and the notification log. JetStream's ESIM_EVENTS is the source of truth; everything
// here can be rebuilt by replaying it.
//
// Two implementations exist, redisstore (production) and kvstore (NATS KV, the
// embedded default), and both pass the one conformance suite in storetest.
// Every method is safe for concurrent use by many goroutines and many
// processes sharing the same backend.
package store

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"time"
)

// ErrNotFound is returned by reads of an entity that was never written.
var ErrNotFound = errors.New("not found")

// ErrConflict is returned when an update lost its compare-and-set race too many
// times in a row. It is transient: retrying the whole operation is safe.
var ErrConflict = errors.New("update conflict")

// ErrNotOwner is returned by Finish and Release when the caller's claim lease was
// taken over by another owner (or never held).
var ErrNotOwner = errors.New("claim not held by this owner")

// Store is everything the services keep. Services depend on the role
// interfaces they use, not on this one.
type Store interface {
	SeenSet
	BatchSeenSet
	State
	BatchState
	Contacts
	Claims
	BatchClaims
	NotificationLog
	BatchNotificationLog
	BatchContacts
	Budgets
	Parking
	BatchParking
	// Ping reports whether the backend answers; readiness uses it.
	Ping(ctx context.Context) error
}

// SeenSet remembers dedupe keys of processed events for a time-to-live fixed
// when the store is built, so late provider retries are skipped cheaply.
type SeenSet interface {
	Seen(ctx context.Context, key string) (bool, error)
	// MarkSeen records key; marking twice is harmless.
	MarkSeen(ctx context.Context, key string) error
}

// BatchSeenSet is a SeenSet that answers many keys in one round trip, for
// consumers that handle events in batches.
type BatchSeenSet interface {
	// SeenMany reports, for each key, whether it was marked within the TTL.
	SeenMany(ctx context.Context, keys []string) ([]bool, error)
	// MarkSeenMany records every key; on error some may be marked, which is
	// harmless (marking is idempotent and the caller retries).
	MarkSeenMany(ctx context.Context, keys []string) error
}

// State keeps orders and profiles. Updates are read-modify-write with
// compare-and-set: fn gets the current value (the zero value with its id set
// when there is none) and returns whether it changed it; fn may run more than
// once and must be a pure function of its argument. An unchanged value is not
// written. The value after the update is returned.
type State interface {
	UpdateOrder(ctx context.Context, orderNo string, fn func(*Order) (bool, error)) (Order, error)
	UpdateProfile(ctx context.Context, iccid string, fn func(*Profile) (bool, error)) (Profile, error)
	Order(ctx context.Context, orderNo string) (Order, error)
	Profile(ctx context.Context, iccid string) (Profile, error)
}

// BatchState reads and writes the orders and profiles of a batch of events
// in one round trip each, for consumers that merge events in batches. A write
// is a compare-and-set against what the batch read, so concurrent writers
// never overwrite each other.
type BatchState interface {
	// ReadState adds to snap each listed order and profile it does not hold
	// yet; one that was never written comes as its zero value with the id set.
	ReadState(ctx context.Context, snap *Snapshot, orderNos, iccids []string) error
	// SeenAndReadState is SeenMany(keys) and ReadState(snap, orderNos,
	// iccids) in one round trip where the backend allows: a batch's seen
	// check and its state read need not wait for each other.
	SeenAndReadState(ctx context.Context, keys []string, snap *Snapshot, orderNos, iccids []string) ([]bool, error)
	// WriteState stores the listed orders and profiles of snap, each only if
	// it is still as it was read, and returns those another writer changed in
	// between (they are not written). On error some may be written, which is
	// harmless: the caller redoes the merge, and merges are idempotent.
	WriteState(ctx context.Context, snap *Snapshot, orderNos, iccids []string) (Lost, error)
}

// Snapshot is a batch's copy of some orders and profiles, each with the
// version it was read at.
type Snapshot struct {
	Orders   map[string]*Versioned[Order]
	Profiles map[string]*Versioned[Profile]
}

// NewSnapshot returns an empty snapshot.
func NewSnapshot() *Snapshot {
	return &Snapshot{Orders: map[string]*Versioned[Order]{}, Profiles: map[string]*Versioned[Profile]{}}
}

// Versioned is a value and the version it was read at: a token only the store
// that read it interprets; nil when the value was never written.
type Versioned[T any] struct {
	Value   T
	Version []byte
}

// Lost lists the orders and profiles a WriteState did not write because
// another writer had changed them since they were read.
type Lost struct {
	Orders, Profiles []string
}

// Empty reports whether nothing was lost.
func (l Lost) Empty() bool { return len(l.Orders) == 0 && len(l.Profiles) == 0 }

// Contacts keep who gets a profile's messages, registered by the reseller's
// checkout under the order's transactionId.
//
// A contact may also list the iccids it covers. The store indexes them on
// PutContact (iccid → transactionId, the last put naming an iccid wins), and
// ContactByICCID follows the index only to a contact that still lists the
// iccid: the index is a hint, written after the contact and verified on read,
// so a replaced or deleted contact, or a writer that died between the two
// writes, never yields a wrong contact and needs no cross-key transaction (the
// keys live in different Redis Cluster slots). The notifier finds most
// contacts without the index, through the transactionId of the intent or of
// the profile's order.
type Contacts interface {
	// PutContact stores c under c.TransactionID, replacing any contact there.
	PutContact(ctx context.Context, c Contact) error
	// Contact reads a contact; ErrNotFound when there is none.
	Contact(ctx context.Context, transactionID string) (Contact, error)
	// ContactByICCID reads the contact listing iccid; ErrNotFound when none does.
	ContactByICCID(ctx context.Context, iccid string) (Contact, error)
	// ContactByAddress reads the contact whose email (compared without
	// case) or phone is address, through an index kept like the iccid one;
	// ErrNotFound when none is. Support staff search by what the customer
	// tells them.
	ContactByAddress(ctx context.Context, address string) (Contact, error)
	// DeleteContact removes a contact and its index entries; ErrNotFound when
	// there was none.
	DeleteContact(ctx context.Context, transactionID string) error
}

// HasAddress reports whether address is c's email (without case) or phone.
func (c Contact) HasAddress(address string) bool {
	return address != "" && (strings.EqualFold(c.Email, address) || c.Phone == address)
}

// AddressKey is how the address index spells address: an email in lower
// case, a phone as it is.
func AddressKey(address string) string {
	if strings.Contains(address, "@") {
		return strings.ToLower(address)
	}
	return address
}

// Addresses are the address index entries of c.
func (c Contact) Addresses() []string {
	var out []string
	if c.Email != "" {
		out = append(out, AddressKey(c.Email))
	}
	if c.Phone != "" {
		out = append(out, c.Phone)
	}
	return out
}

// Contact is how to reach the customer of one order, and the customer's
// preferences. Channels, when set, overrides the notifier's channel order
// ("whatsapp", "sms", "email", "webhook", "console"): the message goes out on
// the first of them that takes it. TimeZone (IANA) places the quiet hours on
// the traveller's clock; OptOut lists the non-critical message kinds the
// customer does not want (critical ones go regardless).
type Contact struct {
	TransactionID string    `json:"transactionId"`
	Name          string    `json:"name,omitempty"`
	Email         string    `json:"email,omitempty"`
	Phone         string    `json:"phone,omitempty"` // E.164
	Locale        string    `json:"locale,omitempty"`
	TimeZone      string    `json:"timeZone,omitempty"`
	Channels      []string  `json:"channels,omitempty"`
	OptOut        []string  `json:"optOut,omitempty"`
	ICCIDs        []string  `json:"iccids,omitempty"`
	UpdatedAt     time.Time `json:"updatedAt,omitzero"`
}

// Claims make each customer message go out once per intent id (docs/design.md,
// Invariants 5): a sender claims the id with a lease, sends, then finishes it.
type Claims interface {
	// Claim tries to take id for owner until the lease runs out.
	Claim(ctx context.Context, id, owner string, lease time.Duration) (Claim, error)
	// Finish records the final state (ClaimSent or ClaimSuppressed), or
	// ClaimDeadLettered; the claim must still be held by owner.
	Finish(ctx context.Context, id, owner string, state ClaimState) error
	// Release gives a held claim back so that another attempt may claim it at
	// once; the attempt counter is kept.
	Release(ctx context.Context, id, owner string) error
	// ClaimState reports where id stands (ClaimNone when never claimed).
	ClaimState(ctx context.Context, id string) (ClaimState, error)
}

// Budgets share a call budget among every process using the store: the
// reconciler's calls to a provider account, whose rate limit counts all of
// esimflow's instances together.
type Budgets interface {
	// Take takes one of the limit calls budget allows in the current window
	// of length per (windows are aligned to the Unix epoch on the caller's
	// clock); false when the window's calls are all taken, and the caller
	// waits for the next window. Counts of past windows expire.
	Take(ctx context.Context, budget string, limit int, per time.Duration) (bool, error)
}

// Window is the index of the window of length per that holds t: both
// stores count a budget's calls under it.
func Window(t time.Time, per time.Duration) int64 { return t.UnixNano() / int64(per) }

// Parking remembers the messages that wait for something to be stored — a
// transactionId's contact, an iccid's order link, a lower warning's end —
// under a key naming it, so that whichever notifier instance hears that it
// was stored (a wake-up) re-publishes them. It is a shortcut, not the only
// way: a waiting message stays in its stream until it is done, and is
// retried on its own schedule if a wake-up or an entry is lost.
type Parking interface {
	// Park records body as id's under key until ttl passes; parking id
	// again replaces its body and restarts its ttl.
	Park(ctx context.Context, key, id string, body []byte, ttl time.Duration) error
	// Parked returns the bodies parked under key by id; an empty map when
	// there are none. An entry is gone once its ttl and that of every later
	// Park under the same key have passed (a store may expire a key's
	// entries together).
	Parked(ctx context.Context, key string) (map[string][]byte, error)
	// Unpark removes ids from key; an id not there is no error.
	Unpark(ctx context.Context, key string, ids ...string) error
}

// NotificationLogLimit is how many entries the log keeps per iccid; older
// ones are dropped.
const NotificationLogLimit = 100

// OpenNotificationLimit is how many open intents the store lists (see
// NotificationLog.OpenNotifications); the oldest drop out.
const OpenNotificationLimit = 500

// NotificationLog records every send attempt and outcome, per iccid, keeping
// the last NotificationLogLimit; and, across iccids, the latest entry of each
// intent that is still open, for the operator's list of messages not out yet.
type NotificationLog interface {
	// AppendNotification adds n to its iccid's log. An entry with an open
	// status (OpenStatus) becomes its intent's open entry, replacing the one
	// before; any other status (sent, suppressed, dead_lettered) removes the
	// intent from the open ones. The open ones are bounded to
	// OpenNotificationLimit, dropping the oldest by SentAt.
	AppendNotification(ctx context.Context, n Notification) error
	// Notifications returns the iccid's entries, oldest first; an iccid with none
	// gives an empty slice, not ErrNotFound.
	Notifications(ctx context.Context, iccid string) ([]Notification, error)
	// OpenNotifications returns the open entry of each open intent, newest
	// SentAt first (equal times by intent id, descending), at most limit;
	// an empty slice when none is open.
	OpenNotifications(ctx context.Context, limit int) ([]Notification, error)
}

// Statuses of notification log entries that leave the intent open: more is
// to come (a retry, a re-drive or a dead letter).
const (
	NotificationWaiting        = "waiting"         // for a contact; Error says what for
	NotificationFailed         = "failed"          // a send failed; retried
	NotificationRetriedUnknown = "retried_unknown" // a send's outcome is unknown; retried
	NotificationHeld           = "held"            // quiet hours on the customer's clock; ReleaseAt says until when
)

// OpenStatus reports whether an entry of this status leaves its intent open.
// With several channels, a channel that took the message closes the intent
// until another one fails again.
func OpenStatus(status string) bool {
	return status == NotificationWaiting || status == NotificationFailed || status == NotificationRetriedUnknown ||
		status == NotificationHeld
}

// ClaimState is where an intent id stands.
type ClaimState string

const (
	ClaimNone       ClaimState = ""
	ClaimHeld       ClaimState = "claimed"    // leased to an owner, or released and free to claim
	ClaimSent       ClaimState = "sent"       // final
	ClaimSuppressed ClaimState = "suppressed" // final: superseded, deliberately not sent
	// ClaimDeadLettered: given up and in the dead letters. Not final — a
	// re-drive claims it again — but nothing is under way: a higher warning
	// ordered after it no longer waits for it.
	ClaimDeadLettered ClaimState = "dead_lettered"
)

// Final reports whether nothing more will be sent for the id.
func (s ClaimState) Final() bool { return s == ClaimSent || s == ClaimSuppressed }

// Finishes reports whether Finish takes s: a final state or ClaimDeadLettered.
func (s ClaimState) Finishes() bool { return s.Final() || s == ClaimDeadLettered }

// ClaimOutcome is the answer to a Claim call.
type ClaimOutcome string

const (
	Claimed     ClaimOutcome = "claimed"      // the caller holds the lease now
	AlreadyDone ClaimOutcome = "already_done" // final state reached; Claim.State says which
	HeldByOther ClaimOutcome = "held"         // another owner's lease is live until Claim.LeaseUntil
)

// Claim is the result of a Claim call.
type Claim struct {
	Outcome ClaimOutcome
	State   ClaimState // for AlreadyDone
	// Attempt counts the claims granted for the id, this one included.
	Attempt int
	// Takeover is set when the previous holder's lease expired without Finish
	// or Release: its send may or may not have happened (the one window of
	// invariant 5), so this attempt is logged as a retry after an unknown outcome.
	Takeover   bool
	LeaseUntil time.Time // for HeldByOther and Claimed
}

// Notification is one entry of the notification log.
type Notification struct {
	ID        string `json:"id"`   // intent id
	Kind      string `json:"kind"` // activation, low_data, validity_low
	ICCID     string `json:"iccid"`
	Threshold int    `json:"threshold,omitempty"`
	// TransactionID is the intent's, when it named one: the contact's key.
	TransactionID string    `json:"transactionId,omitempty"`
	Channel       string    `json:"channel,omitempty"`
	Status        string    `json:"status"` // sent, failed, suppressed, retried_unknown, waiting, held, dead_lettered
	Attempt       int       `json:"attempt,omitempty"`
	Error         string    `json:"error,omitempty"`
	SentAt        time.Time `json:"sentAt"`
	// ReleaseAt is when a held message goes out (status held).
	ReleaseAt time.Time `json:"releaseAt,omitzero"`
}

// Transition is one status change of an order or profile, at the event's time.
type Transition struct {
	Status         string `json:"status"`                   // canonical (event.CanonicalStatus)
	RawStatus      string `json:"rawStatus,omitempty"`      // as the provider spelled it, when not canonical
	PreviousStatus string `json:"previousStatus,omitempty"` // as the provider reported it
	SmdpStatus     string `json:"smdpStatus,omitempty"`     // eSIM Access ESIM_STATUS only
	// At is the provider's event time, or when ESIM_EVENTS stored an event
	// that carried none (Arrival).
	At time.Time `json:"at"`
	// Where the event stands in the causal order (docs/design.md,
	// "Ordering"): the provider's sequence, when sent; for an event without
	// a provider time or sequence (Arrival), its ESIM_EVENTS stream sequence.
	ProviderSeq int64 `json:"providerSeq,omitempty"`
	Arrival     bool  `json:"arrival,omitempty"`
	Stored
}

// Stored is where a transition's or usage report's event is in ESIM_EVENTS
// (docs/design.md, "Timeline"): a function of the stream, whatever order
// its copies are merged in. Seq is the stream sequence of the event (its raw
// body is GET /v1/events/{seq}); of a timed event stored more than once (a
// provider retry after the duplicate window), the smallest, with that
// copy's dedupe key and arrival, and Copies the sequences of the others,
// smallest first, at most CopyLimit. An untimed event's copies are events of
// their own. States written before the timeline was kept have Seq only for
// untimed events, and nothing else of this.
type Stored struct {
	Seq        uint64    `json:"seq,omitempty"`
	DedupeKey  string    `json:"dedupeKey,omitempty"`
	ReceivedAt time.Time `json:"receivedAt,omitzero"`
	Copies     []uint64  `json:"copies,omitempty"`
}

// CopyLimit bounds the copies of one event a state lists.
const CopyLimit = 8

// Duplicates is how many further copies of the event were stored.
func (s Stored) Duplicates() int { return len(s.Copies) }

// Profile is the state of one eSIM profile.
type Profile struct {
	ICCID          string `json:"iccid"`
	OrderNo        string `json:"orderNo,omitempty"`
	TransactionID  string `json:"transactionId,omitempty"`
	EsimTranNo     string `json:"esimTranNo,omitempty"`
	Status         string `json:"status,omitempty"`
	PreviousStatus string `json:"previousStatus,omitempty"`
	SmdpStatus     string `json:"smdpStatus,omitempty"`
	// OrderedBy names what placed the status after the previous one:
	// "provider" (its sequence or event time), "previousStatus" (a chain at
	// one instant), "arrival" (only the stream order decided) or "tie" (two
	// events of one instant: the status names decided).
	OrderedBy    string  `json:"orderedBy,omitempty"`
	UsedVolume   int64   `json:"usedVolume"`
	TotalVolume  int64   `json:"totalVolume"`
	UsagePercent float64 `json:"usagePercent"`
	// Bundle is the id of the current data bundle; Bundles every bundle
	// the kept usage reports make, newest first; Usage those reports,
	// oldest first (docs/design.md, "Ordering": bundles). UsedVolume,
	// TotalVolume and UsagePercent are the current bundle's.
	Bundle  string        `json:"bundle,omitempty"`
	Bundles []Bundle      `json:"bundles,omitempty"`
	Usage   []UsageReport `json:"usage,omitempty"`
	// Subscriptions are the subscriptions of this ICCID (ICCIDs are
	// reused), oldest first; the last is the current one, whose links are
	// OrderNo, TransactionID and EsimTranNo.
	Subscriptions []Subscription `json:"subscriptions,omitempty"`
	// BundlesTrimmed counts, by size name, the bundles whose reports are no
	// longer kept, so that the names of the others stay.
	BundlesTrimmed map[string]int `json:"bundlesTrimmed,omitempty"`
	Validity       *Validity      `json:"validity,omitempty"`
	// Install is what the traveller needs to install the profile, when the
	// provider supplied it (its order query: eSIM Access ac, qrCodeUrl,
	// shortUrl); nil until then.
	Install *Install `json:"install,omitempty"`
	// Periods are the validity periods reported, newest first, bounded: a
	// later one of the same subscription is a renewal.
	Periods   []Period     `json:"periods,omitempty"`
	History   []Transition `json:"history,omitempty"` // newest first, bounded
	UpdatedAt time.Time    `json:"updatedAt,omitzero"`
}

// Bundle is one data bundle of a profile: the provider's id where it sends
// one, else its size and how many of that size came before ("1G", "3G",
// "1G.2"). A top-up starts a new bundle.
type Bundle struct {
	ID string `json:"id"`
	// Subscription is the esimTranNo, else the order, its reports name
	// (UsageReport.Subscription): bundle names count per subscription.
	Subscription string    `json:"subscription,omitempty"`
	Total        int64     `json:"totalVolume"`
	Used         int64     `json:"usedVolume"`
	Percent      float64   `json:"usagePercent"`
	StartedAt    time.Time `json:"startedAt"`
	Reports      int       `json:"reports"`
}

// Subscription is one customer's use of an ICCID: its order, transaction id
// and the provider's subscription id (eSIM Access esimTranNo), and when it
// was first named.
type Subscription struct {
	OrderNo       string    `json:"orderNo,omitempty"`
	TransactionID string    `json:"transactionId,omitempty"`
	EsimTranNo    string    `json:"esimTranNo,omitempty"`
	Since         time.Time `json:"since"`
}

// UsageReport is one DATA_USAGE report, with its place in the causal order
// and in the stream (as Transition's).
type UsageReport struct {
	Used     int64   `json:"used"`
	Total    int64   `json:"total,omitempty"`
	Percent  float64 `json:"percent"`
	BundleID string  `json:"bundleId,omitempty"` // the provider's, when sent
	// Subscription is the esimTranNo, else the order, the report names: a
	// reused ICCID's new subscription starts a bundle of its own.
	Subscription string    `json:"subscription,omitempty"`
	At           time.Time `json:"at"`
	ProviderSeq  int64     `json:"providerSeq,omitempty"`
	Arrival      bool      `json:"arrival,omitempty"`
	Stored
}

// Period is one validity period: its end (the provider's expiredTime), the
// subscription (intent.Subscription) whose reports named it, and whether
// one of them was made before it ended (Live): a period only ever reported
// after its end warns nobody, not even of its renewal.
type Period struct {
	ExpiresAt    time.Time `json:"expiresAt"`
	Subscription string    `json:"subscription,omitempty"`
	Live         bool      `json:"live,omitempty"`
}

// UnmarshalJSON reads a period, also as states stored it before periods
// named their subscription: its end alone, a string (taken as live, as
// every period counted then).
func (p *Period) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] == '"' {
		*p = Period{Live: true}
		return json.Unmarshal(b, &p.ExpiresAt)
	}
	type plain Period // without this method
	return json.Unmarshal(b, (*plain)(p))
}

// Validity is what the latest VALIDITY_USAGE report said of a profile's
// validity period.
type Validity struct {
	Remain     int64     `json:"remain"`              // units left (days for DAY)
	Total      int64     `json:"total,omitempty"`     // units of the whole period
	Unit       string    `json:"unit,omitempty"`      // the provider's durationUnit, e.g. DAY
	ExpiresAt  time.Time `json:"expiresAt,omitzero"`  // the provider's expiredTime
	ReportedAt time.Time `json:"reportedAt,omitzero"` // the event time of the report
}

// Install is how a profile is installed on a device.
type Install struct {
	// ActivationCode is the LPA string, "LPA:1$<SM-DP+ address>$<matching id>":
	// typed in by hand, or the content of the QR code.
	ActivationCode string `json:"activationCode,omitempty"`
	// QRCodeURL is the provider's image of the QR code.
	QRCodeURL string `json:"qrCodeUrl,omitempty"`
	// InstallURL is the provider's install page or an iOS direct-install
	// link (esimsetup); the notifier derives the latter from the activation
	// code when the provider gives none.
	InstallURL string `json:"installUrl,omitempty"`
}

// Order is the state of one order.
type Order struct {
	OrderNo        string       `json:"orderNo"`
	TransactionID  string       `json:"transactionId,omitempty"`
	Status         string       `json:"status,omitempty"`
	PreviousStatus string       `json:"previousStatus,omitempty"`
	OrderedBy      string       `json:"orderedBy,omitempty"` // as Profile.OrderedBy
	Profiles       []string     `json:"profiles"`            // iccids, sorted
	History        []Transition `json:"history,omitempty"`
	UpdatedAt      time.Time    `json:"updatedAt,omitzero"`
}
