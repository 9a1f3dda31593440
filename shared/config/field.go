package config

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// field is a Config field bound to its setting: set parses a value into it,
// check says why the value it holds makes no sense ("" when it does), and
// String shows it for the log.
type field interface {
	set(v string) error
	check() string
	String() string
}

// typed binds a field of type T.
type typed[T any] struct {
	p      *T
	parse  func(string) (T, error)
	checks []func(T) string
	show   func(T) string
}

func (f typed[T]) set(v string) error {
	x, err := f.parse(v)
	if err != nil {
		return err
	}
	*f.p = x
	return nil
}

func (f typed[T]) check() string {
	for _, c := range f.checks {
		if why := c(*f.p); why != "" {
			return why
		}
	}
	return ""
}

func (f typed[T]) String() string {
	if f.show != nil {
		return f.show(*f.p)
	}
	return fmt.Sprint(*f.p)
}

func bind[T any](p *T, parse func(string) (T, error), checks []func(T) string) typed[T] {
	return typed[T]{p: p, parse: parse, checks: checks}
}

func text(p *string, checks ...func(string) string) field {
	return bind(p, func(v string) (string, error) { return v, nil }, checks)
}

func integer[T int | int64](p *T, checks ...func(T) string) field {
	return bind(p, func(v string) (T, error) {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil || int64(T(n)) != n {
			return 0, errors.New("want an integer")
		}
		return T(n), nil
	}, checks)
}

func number(p *float64, checks ...func(float64) string) field {
	return bind(p, func(v string) (float64, error) {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil || f != f {
			return 0, errors.New("want a number")
		}
		return f, nil
	}, checks)
}

func boolean(p *bool) field {
	return bind(p, func(v string) (bool, error) {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return false, errors.New("want true or false")
		}
		return b, nil
	}, nil)
}

func parseDuration(v string) (time.Duration, error) {
	if v == "0" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, errors.New("want a duration such as 30s, 5m or 720h")
	}
	return d, nil
}

func duration(p *time.Duration, checks ...func(time.Duration) string) field {
	return bind(p, parseDuration, checks)
}

// syncInterval reads "always" as 0 (fsync before every ack), else a positive
// interval.
func syncInterval(p *time.Duration) field {
	f := bind(p, func(v string) (time.Duration, error) {
		if v == "always" {
			return 0, nil
		}
		d, err := parseDuration(v)
		if err != nil || d <= 0 {
			return 0, errors.New("want always or a positive interval")
		}
		return d, nil
	}, nil)
	f.show = func(d time.Duration) string {
		if d == 0 {
			return "always"
		}
		return d.String()
	}
	return f
}

func level(p *slog.Level) field {
	return bind(p, func(v string) (slog.Level, error) {
		var l slog.Level
		if err := l.UnmarshalText([]byte(v)); err != nil {
			return 0, errors.New("want debug, info, warn or error")
		}
		return l, nil
	}, nil)
}

// choice maps each accepted word to a value.
func choice[T comparable](p *T, words map[string]T, want string) field {
	f := bind(p, func(v string) (T, error) {
		x, ok := words[v]
		if !ok {
			var zero T
			return zero, errors.New(want)
		}
		return x, nil
	}, nil)
	f.show = func(x T) string {
		for w, y := range words {
			if y == x {
				return w
			}
		}
		return fmt.Sprint(x)
	}
	return f
}

// list reads comma-separated items, dropping empty ones.
func list(p *[]string, checks ...func([]string) string) field {
	return bind(p, func(v string) ([]string, error) { return split(v), nil }, checks)
}

// prefixes reads CIDRs; a bare address is its own /32 or /128.
func prefixes(p *[]netip.Prefix) field {
	return bind(p, func(v string) ([]netip.Prefix, error) {
		var out []netip.Prefix
		for _, f := range split(v) {
			if pre, err := netip.ParsePrefix(f); err == nil {
				out = append(out, pre.Masked())
			} else if addr, err := netip.ParseAddr(f); err == nil {
				out = append(out, netip.PrefixFrom(addr.Unmap(), addr.Unmap().BitLen()))
			} else {
				return nil, fmt.Errorf("%q: want a CIDR such as 203.0.113.0/24 or an address", f)
			}
		}
		return out, nil
	}, nil)
}

// percents reads comma-separated percents, sorted and without repeats.
func percents(p *[]int) field {
	return bind(p, func(v string) ([]int, error) {
		var out []int
		for _, f := range strings.Split(v, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			if err != nil {
				return nil, errors.New("want comma-separated integers")
			}
			out = append(out, n)
		}
		slices.Sort(out)
		return slices.Compact(out), nil
	}, []func([]int) string{func(ps []int) string {
		if len(ps) == 0 {
			return "want at least one percent"
		}
		return whenf(slices.ContainsFunc(ps, func(n int) bool { return n < 1 || n > 100 }), "percents must be 1 to 100")
	}})
}

// split splits a comma-separated value, dropping empty items.
func split(v string) []string {
	var out []string
	for _, f := range strings.Split(v, ",") {
		if f = strings.TrimSpace(f); f != "" {
			out = append(out, f)
		}
	}
	return out
}

// whenf is why, when bad; "" otherwise.
func whenf(bad bool, why string) string {
	if bad {
		return why
	}
	return ""
}

func between[T int | int64](lo, hi T) func(T) string {
	return func(n T) string { return whenf(n < lo || n > hi, fmt.Sprintf("want %d to %d", lo, hi)) }
}

func matches(re *regexp.Regexp, why string) func(string) string {
	return func(s string) string { return whenf(s != "" && !re.MatchString(s), why) }
}

func oneOf(why string, words ...string) func(string) string {
	return func(s string) string { return whenf(!slices.Contains(words, s), why) }
}

// optional checks a value only when it is set.
func optional(ok func(string) bool, why string) func(string) string {
	return func(s string) string { return whenf(s != "" && !ok(s), why) }
}

// each checks every item of a list, reporting the first bad one.
func each(why func(string) string) func([]string) string {
	return func(items []string) string {
		for _, s := range items {
			if w := why(s); w != "" {
				return w
			}
		}
		return ""
	}
}

func hasPrefix(s, prefix string) bool { return strings.HasPrefix(s, prefix) }

// logged is the setting's value as the log shows it: secrets that are URLs
// keep their hosts, other secrets only show that they are set.
func (s Setting) logged() string {
	v := s.field.String()
	if v == "" || v == "[]" {
		return ""
	}
	if s.Secret {
		if strings.Contains(v, "://") {
			return RedactURLs(v)
		}
		return "(set)"
	}
	return v
}

// clockRange reads "HH:MM-HH:MM"; empty is no range (both zero).
func clockRange(p *ClockRange) field {
	f := bind(p, func(s string) (ClockRange, error) {
		if s == "" {
			return ClockRange{}, nil
		}
		a, b, ok := strings.Cut(s, "-")
		fa, erra := time.Parse("15:04", strings.TrimSpace(a))
		fb, errb := time.Parse("15:04", strings.TrimSpace(b))
		if !ok || erra != nil || errb != nil {
			return ClockRange{}, errors.New("want HH:MM-HH:MM, such as 22:00-08:00")
		}
		r := ClockRange{From: fa.Hour()*60 + fa.Minute(), To: fb.Hour()*60 + fb.Minute()}
		if r.From == r.To {
			return ClockRange{}, errors.New("want two different times (an empty value turns quiet hours off)")
		}
		return r, nil
	}, nil)
	f.show = func(r ClockRange) string {
		if r.From == r.To {
			return ""
		}
		return fmt.Sprintf("%02d:%02d-%02d:%02d", r.From/60, r.From%60, r.To/60, r.To%60)
	}
	return f
}
