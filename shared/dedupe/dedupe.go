// Package dedupe derives an event's dedupe key: the Nats-Msg-Id ingest publishes
// it with, and the key of the processor's seen-set.
//
// Only a true retry of one delivery may be dropped (docs/design.md, "Dedupe
// keys"): the same provider event id, or the same content at the same
// provider time. A payload that carries its own id (eSIM Access's notifyId)
// is keyed by that id. The documented format carries none, so a timed event
// is keyed by a hash of what makes it that event: its type, its entity
// (orderNo or iccid), the new and previous status or the usage figures, and
// the provider's time and sequence. An event with neither an id nor a time
// has no key (Key returns ""): its content may repeat as a new fact
// (IN_USE → SUSPENDED → IN_USE), so it is stored every time it arrives, and
// the processor keys it by its place in the stream (SeqKey). A body that
// does not decode into a known, well-formed event is keyed by a hash of its
// canonical JSON, so a retry of the same bytes (in any key order) still matches.
//
// Every key is at most MaxKeyLen bytes of printable ASCII without spaces: a
// provider id longer than MaxIDLen, or carrying any other byte, is keyed by
// its SHA-256 ("h:" and 64 hex digits) instead of its spelling. A key is held
// by JetStream for its duplicate window and sent as a NATS header, so neither
// its size nor its bytes may be the sender's choice.
package dedupe

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"strconv"
	"time"

	"github.com/esimflow/esimflow/shared/event"
)

// Key returns the dedupe key of a body and its decoding (decodeErr as returned
// by event.Decode). It is deterministic: the same event gives the same key
// whatever JSON spelling, key order or retry it arrived in. It is "" for a
// well-formed event with neither an id nor a time: no key may drop it.
func Key(ev event.Event, decodeErr error, body []byte) string {
	var buf [keyLen]byte
	return string(AppendKey(buf[:0], ev, decodeErr, body))
}

// keyLen is the length of a hashed key: a two-byte prefix and 32 hex digits.
const keyLen = 2 + 2*16

// MaxIDLen is the longest provider id used in a key as it is spelled.
const MaxIDLen = 64

// MaxKeyLen bounds every key: an id's "n:" key, or a long id's "h:" hash.
const MaxKeyLen = 2 + 2*sha256.Size

// AppendKey appends the key to dst. For a well-formed event of a known type
// it allocates nothing (ingest derives one per request).
func AppendKey(dst []byte, ev event.Event, decodeErr error, body []byte) []byte {
	if decodeErr == nil && ev.NotifyID != "" && ev.Provider != "" {
		// An adapter's event: one body may hold several events under one
		// id (Airalo's low data is a usage and a validity report), and two
		// providers' ids may be spelled alike, so the id is hashed with
		// what makes the event that event, its provider included.
		var scratch [256]byte
		b := append(append(scratch[:0], ev.NotifyID...), 0)
		return appendDigest(append(dst, "a:"...), identity(b, ev))
	}
	if decodeErr == nil && ev.NotifyID != "" {
		if !plainID(ev.NotifyID) {
			sum := sha256.Sum256([]byte(ev.NotifyID))
			return hex.AppendEncode(append(dst, "h:"...), sum[:])
		}
		return append(append(dst, "n:"...), ev.NotifyID...)
	}
	if decodeErr != nil || ev.Type == event.Unknown || ev.Type == event.CheckHealth {
		return appendDigest(append(dst, "c:"...), []byte(canonical(body)))
	}
	if !ev.Timed() {
		return dst
	}
	var scratch [256]byte
	return appendDigest(append(dst, "e:"...), identity(scratch[:0], ev))
}

// SeqKey is the seen-set key of an event stored without a key (Key gave
// ""): its stream sequence, with its bytes so that a sequence reused by a
// recreated stream does not match an older event's mark. A redelivery of the
// stored message has the same key; a provider's repeat, stored again, does not.
func SeqKey(seq uint64, body []byte) string {
	b := make([]byte, 0, 24+len(body))
	b = append(strconv.AppendUint(b, seq, 10), 0)
	b = append(b, body...)
	var buf [keyLen]byte
	return string(appendDigest(append(buf[:0], "s:"...), b))
}

// plainID reports whether a provider id can be a key as it is: short, and
// printable ASCII without spaces.
func plainID(id string) bool {
	if len(id) > MaxIDLen {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] <= ' ' || id[i] > '~' {
			return false
		}
	}
	return true
}

// identity appends, NUL-separated, what makes the event that event.
func identity(b []byte, ev event.Event) []byte {
	field := func(b []byte, s string) []byte { return append(append(b, s...), 0) }
	if ev.Provider != "" {
		b = field(b, ev.Provider)
	}
	b = field(b, string(ev.Type))
	b = field(b, ev.Entity())
	b = field(b, ev.Status)
	b = append(appendStamp(b, ev.Timestamp), 0)
	if ev.ProviderSeq > 0 {
		b = append(strconv.AppendInt(b, ev.ProviderSeq, 10), 0)
	}
	switch ev.Type {
	case event.OrderStatus:
		// The profiles an order event lists are part of what it says: two
		// events of one order at one instant with different lists are two
		// events. Providers list them in a stable order.
		for _, p := range ev.Profiles {
			b = field(field(field(b, p.ICCID), p.EsimTranNo), p.Status)
		}
	case event.ProfileStatus:
		// X→Y and Z→Y at one instant are two events (issue 14, case 1).
		b = field(b, ev.PreviousStatus)
	case event.EsimStatus, event.SmdpEvent:
		b = field(b, ev.SmdpStatus)
	case event.OperatorAlert:
		b = field(b, ev.Alert)
		b = append(strconv.AppendFloat(b, ev.Balance, 'f', -1, 64), 0)
	case event.DataUsage:
		b = append(strconv.AppendInt(b, ev.UsedVolume, 10), 0)
		b = append(strconv.AppendInt(b, ev.TotalVolume, 10), 0)
		b = append(strconv.AppendFloat(b, ev.UsagePercent, 'f', -1, 64), 0)
	case event.ValidityUsage:
		b = append(strconv.AppendInt(b, ev.RemainDays, 10), 0)
		b = append(appendStamp(b, ev.ExpiredTime), 0)
	}
	return b
}

func appendStamp(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return b
	}
	return t.UTC().AppendFormat(b, time.RFC3339Nano)
}

// appendDigest appends the first 16 bytes of the SHA-256 of data, in hex.
func appendDigest(dst, data []byte) []byte {
	sum := sha256.Sum256(data)
	return hex.AppendEncode(dst, sum[:16])
}

// canonical re-encodes a JSON body with sorted keys and no insignificant space;
// a body that is not JSON is used as it is.
func canonical(body []byte) string {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return string(body)
	}
	out, err := json.Marshal(v)
	if err != nil {
		return string(body)
	}
	return string(out)
}
