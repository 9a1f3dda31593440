package event

import (
	"fmt"
	"time"
	"unicode/utf8"
)

// Bounds on an event's values (OWASP API4: unrestricted resource
// consumption). ingest stores any JSON object; Decode reports an event
// outside these bounds as malformed, so the processor dead-letters it with
// the reason instead of merging it: no field grows the stored state without
// limit, and no event from the far future wins every later comparison.
const (
	// MaxICCIDDigits: an ICCID is digits only, at most 22 of them (ITU-T
	// E.118 allows 22; the providers' published samples have 17 to 20).
	MaxICCIDDigits = 22
	// MaxIDLen bounds orderNo, transactionId, esimTranNo and notifyId, in
	// bytes.
	MaxIDLen = 128
	// MaxStatusLen bounds every status (status, previousStatus, smdpStatus,
	// a listed profile's status) and durationUnit, in bytes.
	MaxStatusLen = 64
	// MaxAlertLen bounds an operator alert's text, in bytes.
	MaxAlertLen = 512
	// MaxProfiles bounds the profiles one ORDER_STATUS event lists.
	MaxProfiles = 100
	// MaxInstallLen bounds a listed profile's activation code, QR code URL
	// and install URL, in bytes.
	MaxInstallLen = 512
	// MaxVolume bounds usedVolume, totalVolume and remain, in bytes (1 PiB:
	// no eSIM bundle comes near it; a larger figure is a provider's bug or a
	// forgery, and would pin the bundle for good).
	MaxVolume = 1 << 50
	// DefaultMaxSkew is how far ahead of now an event time may be (the
	// provider's clock and ours differ) unless a Decoder says otherwise.
	DefaultMaxSkew = 10 * time.Minute
)

// Known statuses, as the providers document them. A status outside these
// sets is kept (it is what the provider said) but drives no message: only
// the statuses the intents name (intent.ActivatedStatuses) ever do.
var (
	KnownOrderStatuses   = []string{"GOT_RESOURCE", "PROCESSING", "SUCCESS", "COMPLETED", "FAILED", "CANCELLED", "REFUNDED"}
	KnownProfileStatuses = []string{"GOT_RESOURCE", "RELEASED", "DOWNLOADED", "INSTALLED", "ENABLED", "DISABLED", "DELETED", "ACTIVATED", "IN_USE", "USED_UP", "USED_EXPIRED", "UNUSED_EXPIRED", "EXPIRED", "CANCELLED", "REVOKED", "SUSPENDED"}
)

// KnownStatus reports whether status, in its canonical spelling
// (CanonicalStatus), is one the providers document for events of type t.
func KnownStatus(t Type, status string) bool {
	set := KnownProfileStatuses
	if t == OrderStatus {
		set = KnownOrderStatuses
	}
	for _, s := range set {
		if s == status {
			return true
		}
	}
	return false
}

// Decoder decodes events against a clock: an event time later than Now plus
// MaxSkew is malformed. The zero Decoder uses the wall clock and
// DefaultMaxSkew; that is what Decode does.
type Decoder struct {
	Now     func() time.Time // nil: time.Now
	MaxSkew time.Duration    // 0: DefaultMaxSkew
}

// bounded checks the event's values against the bounds above; now is the
// latest acceptable event time. Types the processor does not merge (Unknown,
// CheckHealth) are not checked: nothing they carry reaches the state.
func (ev Event) bounded(latest time.Time) error {
	if ev.Type == Unknown || ev.Type == CheckHealth {
		return nil
	}
	if err := iccid("iccid", ev.ICCID); err != nil {
		return err
	}
	type field struct {
		name, v string
		most    int
	}
	for _, f := range [...]field{
		{"orderNo", ev.OrderNo, MaxIDLen}, {"transactionId", ev.TransactionID, MaxIDLen},
		{"esimTranNo", ev.EsimTranNo, MaxIDLen}, {"notifyId", ev.NotifyID, MaxIDLen}, {"bundleId", ev.BundleID, MaxIDLen},
		{"status", ev.Status, MaxStatusLen}, {"previousStatus", ev.PreviousStatus, MaxStatusLen},
		{"smdpStatus", ev.SmdpStatus, MaxStatusLen}, {"durationUnit", ev.DurationUnit, MaxStatusLen},
		{"provider", ev.Provider, MaxStatusLen}, {"adapter", ev.Adapter, MaxStatusLen}, {"alert", ev.Alert, MaxAlertLen},
	} {
		if err := bounded(f.name, f.v, f.most); err != nil {
			return err
		}
	}
	if len(ev.Profiles) > MaxProfiles {
		return fmt.Errorf("profiles: %d listed, at most %d", len(ev.Profiles), MaxProfiles)
	}
	for i, p := range ev.Profiles {
		err := iccid("iccid", p.ICCID)
		if err == nil {
			err = bounded("esimTranNo", p.EsimTranNo, MaxIDLen)
		}
		if err == nil {
			err = bounded("status", p.Status, MaxStatusLen)
		}
		for _, f := range [...]struct{ name, v string }{{"ac", p.ActivationCode}, {"qrCodeUrl", p.QRCodeURL}, {"shortUrl", p.InstallURL}} {
			if err == nil {
				err = bounded(f.name, f.v, MaxInstallLen)
			}
		}
		if err != nil {
			return fmt.Errorf("profiles[%d]: %w", i, err)
		}
	}
	type number struct {
		name string
		v    int64
	}
	for _, n := range [...]number{
		{"usedVolume", ev.UsedVolume}, {"totalVolume", ev.TotalVolume}, {"remain", ev.RemainVolume},
		{"totalDuration", ev.TotalDuration}, {"remainDays", ev.RemainDays},
	} {
		if n.v < 0 {
			return fmt.Errorf("%s: negative (%d)", n.name, n.v)
		}
		if n.v > MaxVolume && n.name != "totalDuration" && n.name != "remainDays" {
			return fmt.Errorf("%s: %d bytes, at most %d", n.name, n.v, int64(MaxVolume))
		}
	}
	if ev.UsagePercent < 0 {
		return fmt.Errorf("usagePercent: negative")
	}
	if ev.Timestamp.After(latest) {
		return fmt.Errorf("event time %s is in the future (latest accepted %s)", ev.Timestamp.Format(time.RFC3339), latest.UTC().Format(time.RFC3339))
	}
	return nil
}

// iccid checks an ICCID: empty (the type's required fields are checked
// apart), or at most MaxICCIDDigits digits.
func iccid(name, v string) error {
	if len(v) > MaxICCIDDigits {
		return fmt.Errorf("%s: %d bytes, want at most %d digits", name, len(v), MaxICCIDDigits)
	}
	for i := 0; i < len(v); i++ {
		if v[i] < '0' || v[i] > '9' {
			return fmt.Errorf("%s: want digits only, got %q", name, v)
		}
	}
	return nil
}

// bounded checks a string field: at most most bytes of UTF-8 without
// control characters (they would forge lines or escapes wherever the value
// is printed).
func bounded(name, v string, most int) error {
	if len(v) > most {
		return fmt.Errorf("%s: %d bytes, at most %d", name, len(v), most)
	}
	if !utf8.ValidString(v) {
		return fmt.Errorf("%s: not UTF-8", name)
	}
	for _, r := range v {
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) {
			return fmt.Errorf("%s: control character in %q", name, v)
		}
	}
	return nil
}
