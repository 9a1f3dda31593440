// Package locale says what a customer's locale may look like, so the
// configuration, the contacts API and the template lookup accept the same
// tags: BCP 47-ish, such as en, de-AT or pt_BR, in any case.
package locale

import (
	"regexp"
	"strings"
)

// canonical is a normalized tag: lower case, parts joined by '-'.
var canonical = regexp.MustCompile(`^[a-z]{2,3}(-[a-z0-9]{2,8}){0,3}$`)

// Normalize lower-cases a tag and joins its parts with '-': "pt_BR" → "pt-br".
func Normalize(tag string) string {
	return strings.ToLower(strings.ReplaceAll(tag, "_", "-"))
}

// Valid reports whether tag is a locale, in any case and with '-' or '_'.
func Valid(tag string) bool { return canonical.MatchString(Normalize(tag)) }

// Canonical reports whether tag is a locale already normalized, as template
// directories are named.
func Canonical(tag string) bool { return canonical.MatchString(tag) }
