package provider

import (
	"encoding/json"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/esimflow/esimflow/shared/event"
	"github.com/valyala/fastjson"
)

// mapped is the adapter of a mapping file, compiled.
type mapped struct {
	name, version string
	probe         bool
	sig           Signature
	statuses      map[string]string
	rules         []rule
}

type rule struct {
	name   string
	typ    event.Type
	when   []cond
	fields []field
}

type cond struct {
	src     string
	path    [][]string
	equals  *string
	present *bool
	re      *regexp.Regexp
	below   *float64
	atLeast *float64
}

type field struct {
	name, src string
	kind      kind
	path      [][]string
	value     string
	extract   *regexp.Regexp
	unit      float64
	remaining bool
	fraction  bool
	timeFmt   string
	item      map[string][][]string
}

func (a *mapped) Name() string    { return a.name }
func (a *mapped) Version() string { return a.version }
func (a *mapped) Probes() bool    { return a.probe }

// parsers keeps fastjson parsers for reuse: a reused parser allocates
// nothing for the values it parses.
var parsers fastjson.ParserPool

// Decode reads the body by every rule that applies.
func (a *mapped) Decode(dc event.Decoder, body []byte) []Decoded {
	if !json.Valid(body) {
		return []Decoded{{Event: a.unknown(), Err: event.ErrInvalidJSON}}
	}
	p := parsers.Get()
	defer parsers.Put(p)
	v, err := p.ParseBytes(body)
	if err != nil {
		return []Decoded{{Event: a.unknown(), Err: fmt.Errorf("%w: %w", event.ErrMalformed, err)}}
	}
	return a.decodeValue(dc, v)
}

// decodeValue reads a parsed body (Telna's adapter reads SNS messages by a
// mapping too).
func (a *mapped) decodeValue(dc event.Decoder, v *fastjson.Value) []Decoded {
	var out []Decoded
	for i := range a.rules {
		r := &a.rules[i]
		if !r.applies(v) {
			continue
		}
		ev, err := a.read(r, v)
		if err == nil {
			err = dc.Check(&ev)
		}
		if err != nil {
			err = fmt.Errorf("%s %q: %w", a.name, r.name, err)
		}
		out = append(out, Decoded{Event: ev, Err: err})
	}
	if len(out) == 0 {
		return []Decoded{{Event: a.unknown()}}
	}
	return out
}

func (a *mapped) unknown() event.Event {
	return event.Event{Type: event.Unknown, Format: event.FormatAdapter, Provider: a.name, Adapter: a.version}
}

// Explain says why no rule applies to a body: for each rule, the first
// condition that does not hold ("" when one applies).
func (a *mapped) Explain(body []byte) string {
	v, err := fastjson.ParseBytes(body)
	if err != nil {
		return err.Error()
	}
	var b strings.Builder
	for i := range a.rules {
		r := &a.rules[i]
		for _, c := range r.when {
			if !c.holds(v) {
				got := "absent"
				if x := lookup(v, c.path); x != nil {
					got = clip(x)
				}
				fmt.Fprintf(&b, "rule %q: when %s: got %s\n", r.name, c.describe(), got)
				break
			}
		}
	}
	return b.String()
}

func (r *rule) applies(v *fastjson.Value) bool {
	for i := range r.when {
		if !r.when[i].holds(v) {
			return false
		}
	}
	return true
}

func (c *cond) holds(v *fastjson.Value) bool {
	x := lookup(v, c.path)
	present := x != nil && x.Type() != fastjson.TypeNull
	if c.present != nil && present != *c.present {
		return false
	}
	if c.equals == nil && c.re == nil && c.below == nil && c.atLeast == nil {
		return true
	}
	if !present {
		return false
	}
	s, ok := scalar(x)
	if !ok {
		return false
	}
	if c.equals != nil && s != *c.equals {
		return false
	}
	if c.re != nil && !c.re.MatchString(s) {
		return false
	}
	if c.below != nil || c.atLeast != nil {
		f, err := strconv.ParseFloat(s, 64)
		if err != nil || (c.below != nil && f >= *c.below) || (c.atLeast != nil && f < *c.atLeast) {
			return false
		}
	}
	return true
}

func (c *cond) describe() string {
	switch {
	case c.equals != nil:
		return fmt.Sprintf("%s equals %q", c.src, *c.equals)
	case c.re != nil:
		return fmt.Sprintf("%s matches %q", c.src, c.re.String())
	case c.below != nil:
		return fmt.Sprintf("%s below %g", c.src, *c.below)
	case c.atLeast != nil:
		return fmt.Sprintf("%s at least %g", c.src, *c.atLeast)
	case c.present != nil && !*c.present:
		return c.src + " absent"
	}
	return c.src + " present"
}

// lookup returns the value at the first alternative of path present in v.
func lookup(v *fastjson.Value, path [][]string) *fastjson.Value {
	for _, keys := range path {
		if x := v.Get(keys...); x != nil {
			return x
		}
	}
	return nil
}

// scalar is a string's text, a number's spelling or a boolean's word.
func scalar(v *fastjson.Value) (string, bool) {
	switch v.Type() {
	case fastjson.TypeString:
		b, _ := v.StringBytes()
		return strings.TrimSpace(string(b)), true
	case fastjson.TypeNumber:
		return string(v.MarshalTo(nil)), true
	case fastjson.TypeTrue:
		return "true", true
	case fastjson.TypeFalse:
		return "false", true
	}
	return "", false
}

// read builds a rule's event from the body; the error names the field, its
// path and the value found.
func (a *mapped) read(r *rule, v *fastjson.Value) (event.Event, error) {
	ev := event.Event{Type: r.typ, Format: event.FormatAdapter, Provider: a.name, Adapter: a.version}
	var u usage
	for i := range r.fields {
		f := &r.fields[i]
		if err := a.set(&ev, &u, f, v); err != nil {
			where := f.src
			if where == "" {
				where = "value " + strconv.Quote(f.value)
			}
			return ev, fmt.Errorf("%w: %s (%s): %w", event.ErrMalformed, f.name, where, err)
		}
	}
	if r.typ == event.DataUsage {
		u.fill(&ev)
	}
	return ev, nil
}

// usage gathers a usage report's figures, to derive the missing ones.
type usage struct {
	used, total, remain          int64
	hasUsed, hasTotal, hasRemain bool
	pct                          float64
	hasPct                       bool
}

// fill derives used from total and remaining (or the reverse), and the
// percent from the volumes when none was sent, as event.Decode does.
func (u usage) fill(ev *event.Event) {
	if !u.hasUsed && u.hasTotal && u.hasRemain {
		u.used, u.hasUsed = max(0, u.total-u.remain), true
	}
	if !u.hasRemain && u.hasTotal && u.hasUsed {
		u.remain, u.hasRemain = max(0, u.total-u.used), true
	}
	if !u.hasPct && u.hasUsed && u.total > 0 {
		u.pct, u.hasPct = min(100, max(0, float64(u.used)*100/float64(u.total))), true
	}
	ev.UsedVolume, ev.TotalVolume, ev.RemainVolume = u.used, u.total, u.remain
	ev.UsagePercent, ev.HasUsage = u.pct, u.hasPct || u.hasUsed
}

func (a *mapped) set(ev *event.Event, u *usage, f *field, v *fastjson.Value) error {
	if f.kind == kProfiles {
		return a.profiles(ev, f, v)
	}
	s, ok, err := f.text(v)
	if err != nil || !ok {
		return err
	}
	switch f.kind {
	case kString:
		a.setString(ev, f.name, s)
	case kVolume:
		n, err := volume(s, f.unit)
		if err != nil {
			return err
		}
		switch f.name {
		case "usedVolume":
			u.used, u.hasUsed = n, true
		case "totalVolume":
			u.total, u.hasTotal = n, true
		case "remainVolume":
			u.remain, u.hasRemain = n, true
		}
	case kPercent:
		p, err := number(s)
		if err != nil {
			return err
		}
		if f.fraction {
			p *= 100
		}
		if f.remaining {
			p = 100 - p
		}
		u.pct, u.hasPct = p, true
	case kInt:
		n, err := integer(s)
		if err != nil {
			return err
		}
		switch f.name {
		case "remainDays":
			ev.RemainDays = n
		case "totalDuration":
			ev.TotalDuration = n
		case "seq":
			ev.ProviderSeq = n
		}
	case kFloat:
		x, err := number(s)
		if err != nil {
			return err
		}
		ev.Balance = x
	case kTime:
		t, err := parseTime(s, f.timeFmt)
		if err != nil {
			return err
		}
		if f.name == "expiredTime" {
			ev.ExpiredTime = t
		} else {
			ev.Timestamp = t
		}
	}
	return nil
}

// text is the field's value as text: its constant, or the value at its
// path (through its extract expression); false when the body has none.
func (f *field) text(v *fastjson.Value) (string, bool, error) {
	if f.path == nil {
		return f.value, true, nil
	}
	x := lookup(v, f.path)
	if x == nil || x.Type() == fastjson.TypeNull {
		if f.value != "" {
			return f.value, true, nil
		}
		return "", false, nil
	}
	s, ok := scalar(x)
	if !ok {
		return "", false, fmt.Errorf("want a string or a number, got %s", clip(x))
	}
	if f.extract != nil {
		m := f.extract.FindStringSubmatch(s)
		if m == nil {
			return "", false, fmt.Errorf("%q does not match %q", s, f.extract.String())
		}
		s = m[1]
	}
	return s, s != "", nil
}

func (a *mapped) setString(ev *event.Event, name, s string) {
	switch name {
	case "notifyId":
		ev.NotifyID = s
	case "iccid":
		ev.ICCID = s
	case "orderNo":
		ev.OrderNo = s
	case "transactionId":
		ev.TransactionID = s
	case "subscriptionId":
		ev.EsimTranNo = s
	case "status":
		ev.Status, ev.RawStatus = a.status(s)
	case "previousStatus":
		ev.PreviousStatus, _ = a.status(s)
	case "smdpStatus":
		ev.SmdpStatus = s
	case "bundleId":
		ev.BundleID = s
	case "durationUnit":
		ev.DurationUnit = strings.ToUpper(s)
	case "alert":
		ev.Alert = s
	}
}

// status maps a provider's status to its canonical one, and returns the
// provider's spelling when it differs.
func (a *mapped) status(raw string) (string, string) {
	c := event.CanonicalStatus(raw)
	if m, ok := a.statuses[c]; ok {
		c = m
	}
	if c == raw {
		return c, ""
	}
	return c, raw
}

func (a *mapped) profiles(ev *event.Event, f *field, v *fastjson.Value) error {
	x := lookup(v, f.path)
	if x == nil || x.Type() == fastjson.TypeNull {
		return nil
	}
	items, err := x.Array()
	if err != nil {
		return fmt.Errorf("want an array, got %s", clip(x))
	}
	if len(items) > event.MaxProfiles {
		return fmt.Errorf("%d profiles, at most %d", len(items), event.MaxProfiles)
	}
	for i, it := range items {
		var ref event.ProfileRef
		for name, p := range f.item {
			y := lookup(it, p)
			if y == nil || y.Type() == fastjson.TypeNull {
				continue
			}
			s, ok := scalar(y)
			if !ok {
				return fmt.Errorf("[%d].%s: want a string, got %s", i, name, clip(y))
			}
			switch name {
			case "iccid":
				ref.ICCID = s
			case "status":
				ref.Status, _ = a.status(s)
			case "subscriptionId":
				ref.EsimTranNo = s
			}
		}
		ev.Profiles = append(ev.Profiles, ref)
	}
	return nil
}

func number(s string) (float64, error) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, fmt.Errorf("want a number, got %q", s)
	}
	return f, nil
}

func integer(s string) (int64, error) {
	if n, err := strconv.ParseInt(s, 10, 64); err == nil {
		return n, nil
	}
	f, err := number(s)
	if err != nil || f != math.Trunc(f) || math.Abs(f) > 1<<62 {
		return 0, fmt.Errorf("want an integer, got %q", s)
	}
	return int64(f), nil
}

// volume reads a quantity in unit and returns bytes, rounded.
func volume(s string, unit float64) (int64, error) {
	f, err := number(s)
	if err != nil {
		return 0, err
	}
	b := math.Round(f * unit)
	if b < 0 || b > event.MaxVolume {
		return 0, fmt.Errorf("%q is %g bytes, want 0 to %d", s, b, int64(event.MaxVolume))
	}
	return int64(b), nil
}

var timeLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05.999999999", "2006-01-02 15:04:05.999999999", "2006-01-02 15:04:05Z07:00"}

// parseTime reads a time in format; 0 is no time (providers send 0 for
// none), as event.Decode reads it.
func parseTime(s, format string) (time.Time, error) {
	if format != "rfc3339" {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			switch {
			case n == 0:
				return time.Time{}, nil
			case n < 0:
				return time.Time{}, fmt.Errorf("negative time %d", n)
			case format == "unix_ms" || (format != "unix" && n > 1e12):
				return time.UnixMilli(n).UTC(), nil
			}
			return time.Unix(n, 0).UTC(), nil
		}
		if format == "unix" || format == "unix_ms" {
			return time.Time{}, fmt.Errorf("want Unix time, got %q", s)
		}
	}
	for _, layout := range timeLayouts {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("want an RFC 3339 time, got %q", s)
}

func clip(v *fastjson.Value) string {
	raw := v.MarshalTo(nil)
	if len(raw) > 40 {
		return string(raw[:40]) + "…"
	}
	return string(raw)
}
