package event

import (
	"encoding/json"
	"errors"
	"strings"
	"time"
)

// Type is the canonical event type. Its lower-case form is the last token of the
// event's subject (esim.events.<type>).
type Type string

// The types esimflow knows. Anything else decodes as Unknown and is kept.
const (
	OrderStatus   Type = "ORDER_STATUS"
	ProfileStatus Type = "PROFILE_STATUS"
	DataUsage     Type = "DATA_USAGE"
	EsimStatus    Type = "ESIM_STATUS"
	ValidityUsage Type = "VALIDITY_USAGE"
	CheckHealth   Type = "CHECK_HEALTH"
	// SmdpEvent is eSIM Access's report of the SM-DP+ (download,
	// installation, enable, disable, delete): it moves a profile's state and
	// never sends a message by itself.
	SmdpEvent Type = "SMDP_EVENT"
	// OperatorAlert is about the reseller's account, not an eSIM (a balance
	// or credit limit running low): it reaches the operator (a metric, the
	// log, the processor's API), never a customer.
	OperatorAlert Type = "OPERATOR_ALERT"
	Unknown       Type = "UNKNOWN"
)

// Types lists every type with a subject of its own, Unknown last.
var Types = []Type{OrderStatus, ProfileStatus, DataUsage, EsimStatus, ValidityUsage, CheckHealth, SmdpEvent, OperatorAlert, Unknown}

// Token is the subject token of the type: "order_status", ..., "unknown".
func (t Type) Token() string { return strings.ToLower(string(t)) }

// ParseToken is the inverse of Token; unknown tokens give Unknown.
func ParseToken(tok string) Type {
	for _, t := range Types {
		if t.Token() == tok {
			return t
		}
	}
	return Unknown
}

func typeOf(name string) Type {
	t := Type(strings.ToUpper(strings.TrimSpace(name)))
	for _, k := range Types {
		if k == t && k != Unknown {
			return t
		}
	}
	return Unknown
}

// Format says which wire format an event came in.
type Format string

const (
	FormatEventType  Format = "eventType"  // documented format, fields at the top level
	FormatNotifyType Format = "notifyType" // eSIM Access envelope, fields under "content"
	FormatOther      Format = "other"      // valid JSON naming no type
	// FormatAdapter: a provider adapter other than the default one read
	// the body (Event.Provider names it).
	FormatAdapter Format = "adapter"
)

// ProfileRef is a profile as listed in an ORDER_STATUS event.
type ProfileRef struct {
	ICCID      string `json:"iccid"`
	EsimTranNo string `json:"esimTranNo,omitempty"`
	Status     string `json:"status,omitempty"`
	// ActivationCode (eSIM Access ac, the LPA string), QRCodeURL and
	// InstallURL (shortUrl) are how the profile is installed, where the
	// event carries them: a reconciler's poll of the order does.
	ActivationCode string `json:"ac,omitempty"`
	QRCodeURL      string `json:"qrCodeUrl,omitempty"`
	InstallURL     string `json:"shortUrl,omitempty"`
}

// Event is the canonical form of one provider notification. Zero values mean the
// provider did not send the field.
type Event struct {
	Type     Type   `json:"type"`
	Format   Format `json:"format"`
	NotifyID string `json:"notifyId,omitempty"` // provider's own event id, when sent

	// Provider and Adapter name the adapter that read the event and its
	// version; empty for the default provider's formats (eventType,
	// notifyType), which Decode reads.
	Provider string `json:"provider,omitempty"`
	Adapter  string `json:"adapter,omitempty"`

	OrderNo       string `json:"orderNo,omitempty"`
	TransactionID string `json:"transactionId,omitempty"`
	ICCID         string `json:"iccid,omitempty"`
	// EsimTranNo is the provider's id of the subscription (eSIM Access's
	// esimTranNo, 1GLOBAL's subscription_id, Roamify's esim_id): with the
	// ICCID, it tells a recycled ICCID's customers apart.
	EsimTranNo string `json:"esimTranNo,omitempty"`

	// Status is the new status: an order's status for ORDER_STATUS, a profile's
	// current status for PROFILE_STATUS and ESIM_STATUS.
	Status string `json:"status,omitempty"`
	// RawStatus is the status as the provider spelled it, when that is not
	// its canonical spelling (CanonicalStatus).
	RawStatus      string       `json:"rawStatus,omitempty"`
	PreviousStatus string       `json:"previousStatus,omitempty"`
	SmdpStatus     string       `json:"smdpStatus,omitempty"`
	Profiles       []ProfileRef `json:"profiles,omitempty"`

	// Usage, in bytes; UsagePercent is 0–100 (computed from used/total when the
	// provider sends no percent). HasUsage tells a 0 % report from no report.
	UsedVolume   int64   `json:"usedVolume,omitempty"`
	TotalVolume  int64   `json:"totalVolume,omitempty"`
	RemainVolume int64   `json:"remainVolume,omitempty"`
	UsagePercent float64 `json:"usagePercent,omitempty"`
	HasUsage     bool    `json:"hasUsage,omitempty"`
	// BundleID is the provider's id of the data bundle a usage report is
	// about (bundleId, packageCode), when it sends one.
	BundleID string `json:"bundleId,omitempty"`

	// Validity (VALIDITY_USAGE).
	DurationUnit  string    `json:"durationUnit,omitempty"`
	TotalDuration int64     `json:"totalDuration,omitempty"`
	RemainDays    int64     `json:"remainDays,omitempty"`
	ExpiredTime   time.Time `json:"expiredTime,omitzero"`

	// Timestamp is the provider's time of the event (eventGenerateTime,
	// timestamp or lastUpdateTime); zero when it sent none (a timestamp of 0
	// is none, not 1970).
	Timestamp time.Time `json:"timestamp,omitzero"`
	// ProviderSeq is the provider's own sequence of the event (seqNumber);
	// 0 when it sent none. Where two events both carry one it orders them
	// before their times do (docs/design.md, "Ordering").
	ProviderSeq int64 `json:"seqNumber,omitempty"`

	// Seq is the ESIM_EVENTS stream sequence the event was stored at: the
	// order ingest stored events in, the same for every consumer and every
	// replay. The consumer sets it; Decode leaves it 0. It is the last
	// evidence of causal order (docs/design.md, "Ordering").
	Seq uint64 `json:"-"`
	// Key and ReceivedAt are the stored copy's dedupe key and when ingest
	// received it (its Esimflow-Received-At header), which the state's
	// timeline records; the consumer sets them, Decode leaves them zero.
	Key        string    `json:"-"`
	ReceivedAt time.Time `json:"-"`

	// Alert is an OPERATOR_ALERT's text, as the provider wrote it or as its
	// adapter names it; Balance the account balance it reports, in the
	// provider's currency (0 when it sends none).
	Alert   string  `json:"alert,omitempty"`
	Balance float64 `json:"balance,omitempty"`

	// Extra keeps every field the decoder does not map, by its JSON name.
	Extra map[string]json.RawMessage `json:"extra,omitempty"`
}

// Entity is the id the event is about: the iccid for profile-level events, the
// order number for ORDER_STATUS.
func (e Event) Entity() string {
	if e.Type == OrderStatus {
		return e.OrderNo
	}
	return e.ICCID
}

// Timed reports whether the provider said when (or in which sequence) the
// event happened. An untimed event is ordered by arrival alone, and a repeat
// of its content may be a new fact (docs/design.md, "Dedupe keys").
func (e Event) Timed() bool { return !e.Timestamp.IsZero() || e.ProviderSeq > 0 }

// ErrInvalidJSON marks a body that is not JSON at all: ingest answers 400.
var ErrInvalidJSON = errors.New("invalid JSON")

// ErrMalformed marks valid JSON whose fields cannot make an event (a number that
// is not one, a missing iccid). It is permanent: redelivery cannot fix it.
var ErrMalformed = errors.New("malformed event")
