package provider

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/esimflow/esimflow/shared/event"
	"go.yaml.in/yaml/v3"
)

// Mapping is a provider's mapping file: everything esimflow needs to read
// the provider's webhooks, with no code. docs/providers.md describes each
// key; the built-in files (builtin/*.yaml) are examples.
type Mapping struct {
	// Provider is the provider's name: lower-case letters, digits and '-',
	// its path segment (/webhooks/{provider}).
	Provider string `yaml:"provider"`
	// Version is the mapping's version, stored with every event read by
	// it: raise it when a change reads old bodies differently.
	Version string `yaml:"version"`
	// Probe: the provider sends HEAD to the URL before it enables it.
	Probe     bool      `yaml:"probe"`
	Signature Signature `yaml:"signature"`
	// Statuses maps the provider's statuses to canonical ones
	// (event.KnownProfileStatuses); an unmapped status is kept in its
	// canonical spelling.
	Statuses map[string]string `yaml:"statuses"`
	// Events are the kinds of event: every rule whose conditions all hold
	// makes one canonical event of the body; no rule, one Unknown event.
	Events []Rule `yaml:"events"`
}

// Signature is how the provider signs (or authenticates) a request.
type Signature struct {
	// Scheme is none (the default), hmac, or basic (HTTP Basic auth; the
	// secret is user:password).
	Scheme string `yaml:"scheme"`
	// Algorithm of the HMAC: sha256 or sha512.
	Algorithm string `yaml:"algorithm"`
	// Header carrying the signature.
	Header string `yaml:"header"`
	// Encoding of the signature: hex, base64, or any (either is accepted).
	Encoding string `yaml:"encoding"`
	// Prefix stripped from the header before comparing (e.g. "sha256=").
	Prefix string `yaml:"prefix"`
	// Signed is what is signed: raw (the body as sent), compact (the body
	// with insignificant whitespace removed), or raw-or-compact.
	Signed string `yaml:"signed"`
}

// Rule is one kind of event: when it applies, and where each canonical
// field is.
type Rule struct {
	Name string      `yaml:"name"`
	When []Condition `yaml:"when"`
	// Type is the canonical type: ORDER_STATUS, ESIM_STATUS, DATA_USAGE,
	// VALIDITY_USAGE, OPERATOR_ALERT, ...
	Type string `yaml:"type"`
	// Fields maps canonical field names (see canonicalFields) to where
	// their value is.
	Fields map[string]Field `yaml:"fields"`
}

// Condition holds when the value at Path passes every test given.
type Condition struct {
	Path    string   `yaml:"path"`
	Equals  *string  `yaml:"equals"`
	Present *bool    `yaml:"present"`
	Matches string   `yaml:"matches"`
	Below   *float64 `yaml:"below"`
	AtLeast *float64 `yaml:"atLeast"`
}

// Field is where a canonical field's value is and how to read it. A field
// given as a plain string is its Path.
type Field struct {
	// Path is a dotted JSON path (bundle.initialQuantity); alternatives
	// are separated by '|' and the first present one is read.
	Path string `yaml:"path"`
	// Value is a constant, for a field the body implies (a status).
	Value string `yaml:"value"`
	// Extract is a regular expression whose first group is the value
	// ("^(\d+)days?$" reads 3 from "3days").
	Extract string `yaml:"extract"`
	// Unit of a volume: B (the default), KB, MB, GB (powers of 1000), KiB,
	// MiB, GiB (powers of 1024).
	Unit string `yaml:"unit"`
	// Percent is what a usagePercent counts: used (the default) or
	// remaining; Scale is percent (0–100, the default) or fraction (0–1).
	Percent string `yaml:"percent"`
	Scale   string `yaml:"scale"`
	// Time is a time's format: auto (the default: RFC 3339, or Unix
	// seconds or milliseconds by size), rfc3339, unix, unix_ms.
	Time string `yaml:"time"`
	// Item maps a profiles list's fields (iccid, status, subscriptionId)
	// to paths inside each element.
	Item map[string]string `yaml:"item"`
}

// UnmarshalYAML reads a field given as a plain path, or in full.
func (f *Field) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		f.Path = n.Value
		return nil
	}
	type plain Field
	return n.Decode((*plain)(f))
}

// ParseMapping reads a mapping file and checks it whole: every error names
// the rule and the key it is about.
func ParseMapping(data []byte) (Mapping, error) {
	var m Mapping
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&m); err != nil {
		return Mapping{}, err
	}
	if _, err := compile(m); err != nil {
		return Mapping{}, err
	}
	return m, nil
}

// NewMapped returns the adapter a mapping describes.
func NewMapped(m Mapping) (Adapter, error) {
	return compile(m)
}

// LoadFile reads a mapping file into its adapter.
func LoadFile(path string) (Adapter, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	m, err := ParseMapping(data)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return compile(m)
}

// LoadDir reads every *.yaml and *.yml file of dir, in name order.
func LoadDir(dir string) ([]Adapter, error) {
	var out []Adapter
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("providers dir: %w", err)
	}
	for _, e := range entries {
		if e.IsDir() || !(strings.HasSuffix(e.Name(), ".yaml") || strings.HasSuffix(e.Name(), ".yml")) {
			continue
		}
		a, err := LoadFile(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, nil
}

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,31}$`)

// kind is how a canonical field's value is read.
type kind int

const (
	kString kind = iota
	kVolume
	kPercent
	kInt
	kFloat
	kTime
	kProfiles
)

// canonicalFields are the names a mapping's fields may have.
var canonicalFields = map[string]kind{
	"notifyId": kString, "iccid": kString, "orderNo": kString, "transactionId": kString,
	"subscriptionId": kString, "status": kString, "previousStatus": kString, "smdpStatus": kString,
	"bundleId": kString, "durationUnit": kString, "alert": kString,
	"usedVolume": kVolume, "totalVolume": kVolume, "remainVolume": kVolume,
	"usagePercent": kPercent,
	"remainDays":   kInt, "totalDuration": kInt, "seq": kInt,
	"balance":   kFloat,
	"timestamp": kTime, "expiredTime": kTime,
	"profiles": kProfiles,
}

var units = map[string]float64{"": 1, "B": 1, "KB": 1e3, "MB": 1e6, "GB": 1e9, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}

// compile checks a mapping and builds its adapter.
func compile(m Mapping) (*mapped, error) {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if !nameRE.MatchString(m.Provider) {
		bad("provider: %q: want up to 32 lower-case letters, digits or '-'", m.Provider)
	}
	if m.Provider == Default {
		bad("provider: %q is the default provider's, read by code", m.Provider)
	}
	if m.Version == "" {
		bad("version: missing")
	}
	a := &mapped{name: m.Provider, version: m.Version, probe: m.Probe, sig: m.Signature, statuses: map[string]string{}}
	if err := checkSignature(m.Signature); err != nil {
		bad("signature: %w", err)
	}
	for raw, c := range m.Statuses {
		a.statuses[event.CanonicalStatus(raw)] = event.CanonicalStatus(c)
	}
	if len(m.Events) == 0 {
		bad("events: none")
	}
	for i, r := range m.Events {
		cr, err := compileRule(r)
		if err != nil {
			name := r.Name
			if name == "" {
				name = fmt.Sprintf("#%d", i+1)
			}
			bad("events %q: %w", name, err)
			continue
		}
		a.rules = append(a.rules, cr)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return a, nil
}

func checkSignature(s Signature) error {
	switch s.Scheme {
	case "", "none", "basic":
		return nil
	case "hmac":
	default:
		return fmt.Errorf("scheme: %q: want none, hmac or basic", s.Scheme)
	}
	if s.Header == "" {
		return errors.New("header: missing")
	}
	if !slices.Contains([]string{"sha256", "sha512"}, s.Algorithm) {
		return fmt.Errorf("algorithm: %q: want sha256 or sha512", s.Algorithm)
	}
	if !slices.Contains([]string{"hex", "base64", "any"}, s.Encoding) {
		return fmt.Errorf("encoding: %q: want hex, base64 or any", s.Encoding)
	}
	if !slices.Contains([]string{"", "raw", "compact", "raw-or-compact"}, s.Signed) {
		return fmt.Errorf("signed: %q: want raw, compact or raw-or-compact", s.Signed)
	}
	return nil
}

func compileRule(r Rule) (rule, error) {
	t := event.Type(strings.ToUpper(r.Type))
	if !slices.Contains(event.Types, t) || t == event.Unknown || t == event.CheckHealth {
		return rule{}, fmt.Errorf("type: %q: want one of ORDER_STATUS, PROFILE_STATUS, ESIM_STATUS, SMDP_EVENT, DATA_USAGE, VALIDITY_USAGE, OPERATOR_ALERT", r.Type)
	}
	cr := rule{name: r.Name, typ: t}
	if cr.name == "" {
		cr.name = string(t)
	}
	if len(r.When) == 0 {
		return rule{}, errors.New("when: no condition (a rule must say how its events are recognised)")
	}
	for i, c := range r.When {
		if c.Path == "" {
			return rule{}, fmt.Errorf("when[%d]: path: missing", i)
		}
		cc := cond{src: c.Path, path: parsePath(c.Path), equals: c.Equals, present: c.Present, below: c.Below, atLeast: c.AtLeast}
		if c.Matches != "" {
			re, err := regexp.Compile(c.Matches)
			if err != nil {
				return rule{}, fmt.Errorf("when[%d]: matches: %w", i, err)
			}
			cc.re = re
		}
		if cc.equals == nil && cc.present == nil && cc.re == nil && cc.below == nil && cc.atLeast == nil {
			t := true
			cc.present = &t // a bare path: it must be there
		}
		cr.when = append(cr.when, cc)
	}
	names := make([]string, 0, len(r.Fields))
	for n := range r.Fields {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		f := r.Fields[n]
		k, ok := canonicalFields[n]
		if !ok {
			return rule{}, fmt.Errorf("fields: %q is no canonical field (want one of %s)", n, strings.Join(fieldNames(), ", "))
		}
		cf := field{name: n, kind: k, src: f.Path, path: parsePath(f.Path), value: f.Value, unit: 1}
		if f.Path == "" && f.Value == "" {
			return rule{}, fmt.Errorf("fields.%s: neither path nor value", n)
		}
		if f.Extract != "" {
			re, err := regexp.Compile(f.Extract)
			if err != nil || re.NumSubexp() < 1 {
				return rule{}, fmt.Errorf("fields.%s: extract: want a regular expression with a group", n)
			}
			cf.extract = re
		}
		u, ok := units[f.Unit]
		if !ok || (f.Unit != "" && k != kVolume) {
			return rule{}, fmt.Errorf("fields.%s: unit: %q: want B, KB, MB, GB, KiB, MiB or GiB, on a volume", n, f.Unit)
		}
		cf.unit = u
		switch f.Percent {
		case "", "used":
		case "remaining":
			cf.remaining = true
		default:
			return rule{}, fmt.Errorf("fields.%s: percent: %q: want used or remaining", n, f.Percent)
		}
		switch f.Scale {
		case "", "percent":
		case "fraction":
			cf.fraction = true
		default:
			return rule{}, fmt.Errorf("fields.%s: scale: %q: want percent or fraction", n, f.Scale)
		}
		if (f.Percent != "" || f.Scale != "") && k != kPercent {
			return rule{}, fmt.Errorf("fields.%s: percent and scale are for usagePercent", n)
		}
		if !slices.Contains([]string{"", "auto", "rfc3339", "unix", "unix_ms"}, f.Time) || (f.Time != "" && k != kTime) {
			return rule{}, fmt.Errorf("fields.%s: time: %q: want auto, rfc3339, unix or unix_ms, on a time", n, f.Time)
		}
		cf.timeFmt = f.Time
		if k == kProfiles {
			if f.Item["iccid"] == "" {
				return rule{}, fmt.Errorf("fields.profiles: item.iccid: missing")
			}
			cf.item = map[string][][]string{}
			for in, p := range f.Item {
				if in != "iccid" && in != "status" && in != "subscriptionId" {
					return rule{}, fmt.Errorf("fields.profiles: item.%s: want iccid, status or subscriptionId", in)
				}
				cf.item[in] = parsePath(p)
			}
		} else if len(f.Item) > 0 {
			return rule{}, fmt.Errorf("fields.%s: item is for profiles", n)
		}
		cr.fields = append(cr.fields, cf)
	}
	return cr, nil
}

func fieldNames() []string {
	out := make([]string, 0, len(canonicalFields))
	for n := range canonicalFields {
		out = append(out, n)
	}
	slices.Sort(out)
	return out
}

// parsePath splits "a.b | c" into its alternatives' keys.
func parsePath(s string) [][]string {
	if s == "" {
		return nil
	}
	var out [][]string
	for alt := range strings.SplitSeq(s, "|") {
		out = append(out, strings.Split(strings.TrimSpace(alt), "."))
	}
	return out
}
