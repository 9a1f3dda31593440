package event

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"strconv"
	"strings"
	"sync"
	"time"
	"unsafe"

	"github.com/valyala/fastjson"
)

// parsers keeps fastjson parsers for reuse: a parser owns the memory of the
// values it parsed, so one that is reused allocates nothing.
var parsers fastjson.ParserPool

// decoders keeps decoders for reuse: a decoder refers to itself (used is
// sliced from usedBuf), so it lives on the heap, and at some 350 bytes it was
// most of what a Decode allocated (ingest's allocation profile under load).
var decoders = sync.Pool{New: func() any { return new(decoder) }}

// getDecoder returns an empty decoder of fields sharing arena; putDecoder
// gives it back once nothing it returned refers to its memory (the strings
// are copied into the arena or allocated on their own, never into the
// decoder).
func getDecoder(fields *fastjson.Object, arena *[]byte) *decoder {
	d := decoders.Get().(*decoder)
	d.fields, d.arena = fields, arena
	d.used = d.usedBuf[:0]
	return d
}

func putDecoder(d *decoder) {
	*d = decoder{}
	decoders.Put(d)
}

// Decode turns a webhook body into an Event. The error wraps ErrInvalidJSON when
// the body is not JSON, and ErrMalformed when it is JSON but a field cannot be
// read or a required one is missing; in that case the returned Event still
// carries the type and format, so callers can route it.
//
// A valid JSON value that names no known type decodes as Unknown without error.
//
// It is on every request's path in ingest and every event's in the processor:
// encoding/json validates (strictly, as before), fastjson parses, about ten
// times faster than decoding into a map (docs/adr/0006).
//
// Decode checks event times against the wall clock; a Decoder takes another.
func Decode(body []byte) (Event, error) { return Decoder{}.Decode(body) }

// Decode is the package's Decode against the Decoder's clock and skew: on
// top of the required fields, it checks the bounds of every value (see
// MaxIDLen and the constants beside it), and reports an event outside them as
// malformed, with the reason.
func (dc Decoder) Decode(body []byte) (Event, error) {
	if !json.Valid(body) {
		return Event{Type: Unknown, Format: FormatOther}, ErrInvalidJSON
	}
	p := parsers.Get()
	defer parsers.Put(p)
	v, err := p.ParseBytes(body)
	if err != nil {
		// Valid JSON fastjson will not take: nested deeper than it allows.
		return Event{Type: Unknown, Format: FormatOther}, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	top, err := v.Object()
	if err != nil {
		// Valid JSON, but not an object: an array, a string, a number.
		return Event{Type: Unknown, Format: FormatOther}, nil
	}
	// Every string the event keeps is a part of the body, unescaped (never
	// longer): one allocation the body's size holds them all.
	arena := make([]byte, 0, len(body))
	d := getDecoder(nil, &arena)
	ev := d.decode(top)
	derr := d.err
	putDecoder(d)
	if derr != nil {
		return ev, fmt.Errorf("%w: %s %w", ErrMalformed, ev.Type, derr)
	}
	if err := ev.validate(); err != nil {
		return ev, fmt.Errorf("%w: %s %w", ErrMalformed, ev.Type, err)
	}
	if err := ev.bounded(dc.latest()); err != nil {
		return ev, fmt.Errorf("%w: %s %w", ErrMalformed, ev.Type, err)
	}
	return ev, nil
}

// Check is what Decode checks of an event, for events an adapter built
// from another format: it writes the statuses in their canonical spelling
// (keeping the provider's), then checks the required fields and the bounds.
// The error wraps ErrMalformed.
func (dc Decoder) Check(ev *Event) error {
	ev.canonicalStatuses()
	if err := ev.validate(); err != nil {
		return fmt.Errorf("%w: %s %w", ErrMalformed, ev.Type, err)
	}
	if err := ev.bounded(dc.latest()); err != nil {
		return fmt.Errorf("%w: %s %w", ErrMalformed, ev.Type, err)
	}
	return nil
}

// latest is the latest event time accepted now.
func (dc Decoder) latest() time.Time {
	now, skew := time.Now, DefaultMaxSkew
	if dc.Now != nil {
		now = dc.Now
	}
	if dc.MaxSkew > 0 {
		skew = dc.MaxSkew
	}
	return now().Add(skew)
}

// decoder reads fields out of a JSON object, remembering the first error so the
// field list reads as a straight table. Everything it returns is copied out of
// the parser's memory.
type decoder struct {
	fields *fastjson.Object
	// arena holds the strings copied out, shared with the decoders of
	// nested objects; nil: each string allocated on its own.
	arena   *[]byte
	used    []string
	err     error
	usedBuf [16]string // used's first backing array: events have a dozen fields
	scratch [32]byte   // a number's spelling, before it is copied out
}

func (d *decoder) decode(top *fastjson.Object) Event {
	var ev Event
	d.fields, d.used = top, d.usedBuf[:0]
	switch {
	case top.Get("eventType") != nil:
		ev.Format = FormatEventType
		ev.Type = d.typ("eventType")
	case top.Get("notifyType") != nil:
		ev.Format = FormatNotifyType
		ev.Type = d.typ("notifyType")
		ev.NotifyID = d.str("notifyId")
		ev.Timestamp = d.time("eventGenerateTime")
		ev.Extra = d.rest()
		var content *fastjson.Object
		if raw := top.Get("content"); raw != nil && raw.Type() != fastjson.TypeNull {
			var err error
			if content, err = raw.Object(); err != nil {
				d.fail("content: not an object")
			}
		}
		if content == nil {
			content = new(fastjson.Object)
		}
		d.fields, d.used = content, d.used[:0]
	default:
		ev.Type, ev.Format = Unknown, FormatOther
		return ev
	}
	d.body(&ev)
	ev.canonicalStatuses()
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
	if ts := d.time("lastUpdateTime"); !ts.IsZero() && ev.Timestamp.IsZero() {
		ev.Timestamp = ts
	}
	if n, ok := d.int("seqNumber"); ok && n > 0 {
		ev.ProviderSeq = n
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
	case EsimStatus, SmdpEvent:
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
		pct, hasPct = usagePercent(pct, hasPct, used, hasUsed, total)
		ev.UsedVolume, ev.TotalVolume, ev.RemainVolume = used, total, remain
		ev.BundleID = d.str("bundleId")
		if ev.BundleID == "" {
			ev.BundleID = d.str("packageCode")
		}
		ev.UsagePercent, ev.HasUsage = pct, hasPct || hasUsed
	case ValidityUsage:
		ev.DurationUnit = d.str("durationUnit")
		ev.TotalDuration, _ = d.int("totalDuration")
		ev.RemainDays, _ = d.int("remain")
		ev.ExpiredTime = d.time("expiredTime")
	}
}

// usagePercent is the percent a usage report stands for (docs/design.md,
// "Event formats", per field): the provider's when it is within 0–100; else
// derived from the volumes, clamped to 0–100 (usage beyond the total is an
// exhausted bundle); a percent outside 0–100 with no volumes to prove the
// truth is left as sent, and validate dead-letters it with the reason.
func usagePercent(pct float64, hasPct bool, used int64, hasUsed bool, total int64) (float64, bool) {
	derived, canDerive := 0.0, hasUsed && total > 0
	if canDerive {
		derived = min(100, max(0, float64(used)*100/float64(total)))
	}
	switch {
	case hasPct && pct >= 0 && pct <= 100:
		return pct, true
	case canDerive:
		return derived, true
	}
	return pct, hasPct
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
	case SmdpEvent:
		if err := need("iccid", ev.ICCID); err != nil {
			return err
		}
		if ev.Status == "" && ev.SmdpStatus == "" {
			return fmt.Errorf("missing esimStatus and smdpStatus")
		}
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
		if ev.UsagePercent > 100 {
			return fmt.Errorf("usagePercent: %g outside 0–100, and no used and total volumes to derive it from", ev.UsagePercent)
		}
	case ValidityUsage:
		return need("iccid", ev.ICCID)
	case OperatorAlert:
		return need("alert", ev.Alert)
	}
	return nil
}

func (d *decoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf(format, args...)
	}
}

func (d *decoder) take(name string) (*fastjson.Value, bool) {
	v := d.fields.Get(name)
	if v == nil {
		return nil, false
	}
	d.used = append(d.used, name)
	if v.Type() == fastjson.TypeNull {
		return nil, false
	}
	return v, true
}

// rest returns the fields not read so far, as their JSON.
func (d *decoder) rest() map[string]json.RawMessage {
	var out map[string]json.RawMessage
	d.fields.Visit(func(key []byte, v *fastjson.Value) {
		if string(key) == "content" || d.isUsed(key) {
			return
		}
		if out == nil {
			out = map[string]json.RawMessage{}
		}
		out[string(key)] = v.MarshalTo(nil)
	})
	return out
}

// typ reads an event type: a known one, spelt in ASCII, is matched in the
// parser's memory without copying it out; anything else as typeOf reads it.
func (d *decoder) typ(name string) Type {
	if v := d.fields.Get(name); v != nil && v.Type() == fastjson.TypeString {
		if b, err := v.StringBytes(); err == nil {
			if t, ok := knownType(bytes.TrimSpace(b)); ok {
				d.used = append(d.used, name)
				return t
			}
		}
	}
	return typeOf(d.str(name))
}

// knownType is typeOf for a name in ASCII: the known type it names, in any
// letter case, or false.
func knownType(b []byte) (Type, bool) {
	for _, k := range Types {
		if k != Unknown && len(k) == len(b) && asciiUpperIs(b, string(k)) {
			return k, true
		}
	}
	return "", false
}

// asciiUpperIs reports whether b, its ASCII letters upper-cased, is upper
// (itself upper case ASCII). Non-ASCII bytes never match.
func asciiUpperIs(b []byte, upper string) bool {
	for i, c := range b {
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		if c != upper[i] {
			return false
		}
	}
	return true
}

// isUsed reports whether the field key was read; it compares without
// copying the key (every field of every event is looked up here).
func (d *decoder) isUsed(key []byte) bool {
	for _, u := range d.used {
		if u == string(key) {
			return true
		}
	}
	return false
}

// text reads a JSON string.
func (d *decoder) text(v *fastjson.Value) (string, bool) {
	b, err := v.StringBytes()
	if err != nil {
		return "", false
	}
	return d.keep(b), true
}

// numeral reads a JSON number as its own decimal spelling.
func (d *decoder) numeral(v *fastjson.Value) (string, bool) {
	if v.Type() != fastjson.TypeNumber {
		return "", false
	}
	return d.keep(v.MarshalTo(d.scratch[:0])), true
}

// keep copies b out of the parser's memory into the arena. The arena never
// grows: what does not fit (it cannot, short of a field read twice) gets an
// allocation of its own, so a string handed out is never moved nor written.
func (d *decoder) keep(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if d.arena == nil || cap(*d.arena)-len(*d.arena) < len(b) {
		return string(b)
	}
	start := len(*d.arena)
	*d.arena = append(*d.arena, b...)
	return unsafe.String(&(*d.arena)[start], len(b))
}

// str reads a string; a number is accepted and kept in its JSON spelling, since
// providers send ids such as transactionId either way.
func (d *decoder) str(name string) string {
	v, ok := d.take(name)
	if !ok {
		return ""
	}
	if s, ok := d.text(v); ok {
		return strings.TrimSpace(s)
	}
	if n, ok := d.numeral(v); ok {
		return n
	}
	d.fail("%s: want a string, got %s", name, clip(v))
	return ""
}

// number reads a JSON number or a numeric string as its decimal spelling.
func (d *decoder) number(name string) (string, bool) {
	v, ok := d.take(name)
	if !ok {
		return "", false
	}
	if n, ok := d.numeral(v); ok {
		return n, true
	}
	if s, ok := d.text(v); ok {
		s = strings.TrimSpace(s)
		if s == "" {
			return "", false
		}
		return s, true
	}
	d.fail("%s: want a number, got %s", name, clip(v))
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
	v, ok := d.take(name)
	if !ok {
		return time.Time{}
	}
	s, ok := d.text(v)
	if !ok {
		if s, ok = d.numeral(v); !ok {
			d.fail("%s: want a time, got %s", name, clip(v))
			return time.Time{}
		}
	}
	s = strings.TrimSpace(s)
	if s == "" {
		return time.Time{}
	}
	if !digits(s) {
		// Not Unix time, the usual case: skip ParseInt, whose error allocates.
	} else if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		if n == 0 {
			// Providers send 0 for "no time": read as 1970 it would lose
			// every comparison (issue 14, case 7).
			return time.Time{}
		}
		if n < 0 {
			d.fail("%s: negative time %d", name, n)
			return time.Time{}
		}
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

// digits reports whether s could be a base-10 integer: an optional sign and
// digits only, which is all strconv.ParseInt accepts at base 10.
func digits(s string) bool {
	if s != "" && (s[0] == '+' || s[0] == '-') {
		s = s[1:]
	}
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

func (d *decoder) profiles(name string) []ProfileRef {
	v, ok := d.take(name)
	if !ok {
		return nil
	}
	items, err := v.Array()
	if err != nil {
		d.fail("%s: want an array of objects", name)
		return nil
	}
	out := make([]ProfileRef, 0, len(items))
	for _, item := range items {
		obj, err := item.Object()
		if err != nil {
			d.fail("%s: want an array of objects", name)
			return nil
		}
		sub := getDecoder(obj, d.arena)
		out = append(out, ProfileRef{ICCID: sub.str("iccid"), EsimTranNo: sub.str("esimTranNo"), Status: sub.str("status"),
			ActivationCode: sub.str("ac"), QRCodeURL: sub.str("qrCodeUrl"), InstallURL: sub.str("shortUrl")})
		serr := sub.err
		putDecoder(sub)
		if serr != nil {
			d.fail("%s: %w", name, serr)
		}
	}
	return out
}

func clip(v *fastjson.Value) string {
	raw := v.MarshalTo(nil)
	if len(raw) > 40 {
		return string(raw[:40]) + "…"
	}
	return string(raw)
}
