// Package dedupe derives an event's dedupe key: the Nats-Msg-Id ingest publishes
// it with, and the key of the processor's seen-set.
//
// The provider's documented format carries no event id, so the key is a hash of
// what makes the event that event: its type, its entity (orderNo or iccid), the
// new status or usage figures, and the provider's timestamp. A payload that
// carries its own id (eSIM Access's notifyId) is keyed by that id. A body that
// does not decode into a known, well-formed event is keyed by a hash of its
// canonical JSON, so a retry of the same bytes (in any key order) still matches.
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
// whatever JSON spelling, key order or retry it arrived in.
func Key(ev event.Event, decodeErr error, body []byte) string {
	if decodeErr == nil && ev.NotifyID != "" {
		return "n:" + ev.NotifyID
	}
	if decodeErr != nil || ev.Type == event.Unknown || ev.Type == event.CheckHealth {
		return "c:" + digest(canonical(body))
	}
	return "e:" + digest(identity(ev)...)
}

func identity(ev event.Event) []string {
	f := []string{string(ev.Type), ev.Entity(), ev.Status, stamp(ev.Timestamp)}
	switch ev.Type {
	case event.EsimStatus:
		f = append(f, ev.SmdpStatus)
	case event.DataUsage:
		f = append(f, strconv.FormatInt(ev.UsedVolume, 10), strconv.FormatInt(ev.TotalVolume, 10),
			strconv.FormatFloat(ev.UsagePercent, 'f', -1, 64))
	case event.ValidityUsage:
		f = append(f, strconv.FormatInt(ev.RemainDays, 10), stamp(ev.ExpiredTime))
	}
	return f
}

func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func digest(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		h.Write([]byte(p))
		h.Write([]byte{0})
	}
	return hex.EncodeToString(h.Sum(nil)[:16])
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
