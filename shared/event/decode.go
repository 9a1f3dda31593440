package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Decode turns a webhook body into an Event. The error wraps ErrInvalidJSON when
// the body is not JSON, and ErrMalformed when it is JSON but a field cannot be
// read or a required one is missing; in that case the returned Event still
// carries the type and format, so callers can route it.
//
// A valid JSON value that names no known type decodes as Unknown without error.
func Decode(body []byte) (Event, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil {
		// Unmarshal checks the whole body before it decodes: a syntax error
		// means not JSON; any other error, JSON but not an object (an array,
		// a string, a number).
		if syntax := (*json.SyntaxError)(nil); errors.As(err, &syntax) {
			return Event{Type: Unknown, Format: FormatOther}, ErrInvalidJSON
		}
		return Event{Type: Unknown, Format: FormatOther}, nil
	}
	d := decoder{}
	ev := d.decode(top)
	if d.err != nil {
		return ev, fmt.Errorf("%w: %s %w", ErrMalformed, ev.Type, d.err)
	}
	if err := ev.validate(); err != nil {
		return ev, fmt.Errorf("%w: %s %w", ErrMalformed, ev.Type, err)
	}
	return ev, nil
}

// decoder reads fields out of a JSON object, remembering the first error so the
// field list reads as a straight table.
type decoder struct {
	fields map[string]json.RawMessage
	used   map[string]bool
	err    error
}

func (d *decoder) decode(top map[string]json.RawMessage) Event {
	var ev Event
	d.fields, d.used = top, map[string]bool{}
	switch {
	case has(top, "eventType"):
		ev.Format = FormatEventType
		ev.Type = typeOf(d.str("eventType"))
	case has(top, "notifyType"):
		ev.Format = FormatNotifyType
		ev.Type = typeOf(d.str("notifyType"))
		ev.NotifyID = d.str("notifyId")
		ev.Timestamp = d.time("eventGenerateTime")
		ev.Extra = d.rest()
		content := map[string]json.RawMessage{}
		if raw, ok := top["content"]; ok && !isNull(raw) {
			if err := json.Unmarshal(raw, &content); err != nil {
				d.fail("content: not an object")
			}
		}
		d.fields, d.used = content, map[string]bool{}
	default:
		ev.Type, ev.Format = Unknown, FormatOther
		return ev
	}
	d.body(&ev)
	for k, v := range d.rest() {
		if ev.Extra == nil {
			ev.Extra = map[string]json.RawMessage{}
		}
		ev.Extra[k] = v
	}
	return ev
}

// body reads the event's fields, in either format: the two formats share most
// names, and differ where noted.
func (d *decoder) body(ev *Event) {
	if id := d.str("notifyId"); id != "" {
		ev.NotifyID = id
	}
	if ts := d.time("eventGenerateTime"); !ts.IsZero() {
		ev.Timestamp = ts
	}
	if ts := d.time("timestamp"); !ts.IsZero() {
		ev.Timestamp = ts
	}
	ev.OrderNo = d.str("orderNo")
	ev.TransactionID = d.str("transactionId")
	ev.ICCID = d.str("iccid")
	ev.EsimTranNo = d.str("esimTranNo")

	switch ev.Type {
	case OrderStatus:
		ev.Status = d.str("status")
		if s := d.str("orderStatus"); s != "" { // eSIM Access
			ev.Status = s
		}
		ev.Profiles = d.profiles("profiles")
	case ProfileStatus:
		ev.Status = d.str("currentStatus")
		ev.PreviousStatus = d.str("previousStatus")
	case EsimStatus:
		ev.Status = d.str("esimStatus")
		ev.SmdpStatus = d.str("smdpStatus")
	case DataUsage:
		used, hasUsed := d.int("usedVolume")
		if u, ok := d.int("orderUsage"); ok { // eSIM Access
			used, hasUsed = u, true
		}
		total, hasTotal := d.int("totalVolume")
		remain, hasRemain := d.int("remain")
		pct, hasPct := d.float("usagePercent")
		if !hasUsed && hasTotal && hasRemain {
			used, hasUsed = total-remain, true
		}
		if !hasPct && hasUsed && total > 0 {
			pct, hasPct = math.Min(100, float64(used)*100/float64(total)), true
		}
		ev.UsedVolume, ev.TotalVolume, ev.RemainVolume = used, total, remain
		ev.UsagePercent, ev.HasUsage = pct, hasPct || hasUsed
	case ValidityUsage:
		ev.DurationUnit = d.str("durationUnit")
		ev.TotalDuration, _ = d.int("totalDuration")
		ev.RemainDays, _ = d.int("remain")
		ev.ExpiredTime = d.time("expiredTime")
	}
}

func (ev Event) validate() error {
	need := func(name, v string) error {
		if v == "" {
			return fmt.Errorf("missing %s", name)
		}
		return nil
	}
	switch ev.Type {
	case OrderStatus:
		if err := need("orderNo", ev.OrderNo); err != nil {
			return err
		}
		for i, p := range ev.Profiles {
			if p.ICCID == "" {
				return fmt.Errorf("profiles[%d]: missing iccid", i)
			}
		}
		return need("status", ev.Status)
	case ProfileStatus, EsimStatus:
		if err := need("iccid", ev.ICCID); err != nil {
			return err
		}
		return need("status", ev.Status)
	case DataUsage:
		if err := need("iccid", ev.ICCID); err != nil {
			return err
		}
		if !ev.HasUsage {
			return fmt.Errorf("missing usage figures")
		}
		if ev.UsagePercent < 0 || ev.UsedVolume < 0 || ev.TotalVolume < 0 {
			return fmt.Errorf("negative usage")
		}
	case ValidityUsage:
		return need("iccid", ev.ICCID)
	}
	return nil
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf(format, args...)
	}
}

func (d *decoder) take(name string) (json.RawMessage, bool) {
	raw, ok := d.fields[name]
	if !ok {
		return nil, false
	}
	d.used[name] = true
	if isNull(raw) {
		return nil, false
	}
	return raw, true
}

// rest returns the fields not read so far.
func (d *decoder) rest() map[string]json.RawMessage {
	var out map[string]json.RawMessage
	for k, v := range d.fields {
		if d.used[k] || k == "content" {
			continue
		}
		if out == nil {
			out = map[string]json.RawMessage{}
		}
		out[k] = v
	}
	return out
}

// str reads a string; a number is accepted and kept in its JSON spelling, since
// providers send ids such as transactionId either way.
func (d *decoder) str(name string) string {
	raw, ok := d.take(name)
	if !ok {
		return ""
	}
	if s, ok := text(raw); ok {
		return strings.TrimSpace(s)
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err == nil {
		return n.String()
	}
	d.fail("%s: want a string, got %s", name, clip(raw))
	return ""
}

// text reads a JSON string. One without escapes, the usual case, is read
// without another pass of the JSON decoder (raw was checked as JSON).
func text(raw json.RawMessage) (string, bool) {
	if len(raw) < 2 || raw[0] != '"' {
		return "", false
	}
	plain := true
	for _, c := range raw[1 : len(raw)-1] {
		if c == '\\' || c < 0x20 || c >= 0x80 {
			plain = false
			break
		}
	}
	if plain {
		return string(raw[1 : len(raw)-1]), true
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false
	}
	return s, true
}

// number reads a JSON number or a numeric string as its decimal spelling.
func (d *decoder) number(name string) (string, bool) {
	raw, ok := d.take(name)
	if !ok {
		return "", false
	}
	if len(raw) > 0 && (raw[0] == '-' || raw[0] >= '0' && raw[0] <= '9') {
		// A JSON number is its own decimal spelling.
		return string(raw), true
	}
	if s, ok := text(raw); ok {
		s = strings.TrimSpace(s)
		if s == "" {
			return "", false
		}
		return s, true
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err == nil {
		return n.String(), true
	}
	d.fail("%s: want a number, got %s", name, clip(raw))
	return "", false
}

func (d *decoder) int(name string) (int64, bool) {
	s, ok := d.number(name)
	if !ok {
		return 0, false
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n, true
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f != math.Trunc(f) || math.Abs(f) > 1<<62 {
		d.fail("%s: want an integer, got %q", name, s)
		return 0, false
	}
	return int64(f), true
}

func (d *decoder) float(name string) (float64, bool) {
	s, ok := d.number(name)
	if !ok {
		return 0, false
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		d.fail("%s: want a number, got %q", name, s)
		return 0, false
	}
	return f, true
}

var timeLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999", "2006-01-02 15:04:05Z07:00"}

// time reads an RFC 3339 time (a zone-less one is UTC) or Unix seconds or
// milliseconds, as a number or numeric string.
func (d *decoder) time(name string) time.Time {
	raw, ok := d.take(name)
	if !ok {
		return time.Time{}
	}
	s, ok := text(raw)
	if !ok {
		var n json.Number
		if err := json.Unmarshal(raw, &n); err != nil {
			d.fail("%s: want a time, got %s", name, clip(raw))
			return time.Time{}
		}
		s = n.String()
	}
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}
	}
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n > 1e12 {
			return time.UnixMilli(n).UTC()
		}
		return time.Unix(n, 0).UTC()
	}
	for _, layout := range timeLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC()
		}
	}
	d.fail("%s: want an RFC 3339 time, got %q", name, s)
	return time.Time{}
}

func (d *decoder) profiles(name string) []ProfileRef {
	raw, ok := d.take(name)
	if !ok {
		return nil
	}
	var items []map[string]json.RawMessage
	if err := json.Unmarshal(raw, &items); err != nil {
		d.fail("%s: want an array of objects", name)
		return nil
	}
	out := make([]ProfileRef, 0, len(items))
	for _, item := range items {
		sub := decoder{fields: item, used: map[string]bool{}}
		out = append(out, ProfileRef{ICCID: sub.str("iccid"), EsimTranNo: sub.str("esimTranNo"), Status: sub.str("status")})
		if sub.err != nil {
			d.fail("%s: %w", name, sub.err)
		}
	}
	return out
}

func has(m map[string]json.RawMessage, k string) bool { _, ok := m[k]; return ok }

func isNull(raw json.RawMessage) bool { return bytes.Equal(bytes.TrimSpace(raw), []byte("null")) }

func clip(raw json.RawMessage) string {
	if len(raw) > 40 {
		return string(raw[:40]) + "…"
	}
	return string(raw)
}
