package template

import (
	"strconv"
	"strings"
)

// Bytes formats a data volume the way plans are sold: binary multiples named
// GB and MB (a "1 GB" plan is 1024³ bytes), gigabytes with one decimal when it
// matters, megabytes and kilobytes whole, with the locale's decimal mark.
func Bytes(n int64, locale string) string {
	const (
		kb = 1 << 10
		mb = 1 << 20
		gb = 1 << 30
	)
	var s string
	switch {
	case n >= gb:
		s = strconv.FormatFloat(float64(n)/gb, 'f', 1, 64)
		s = strings.TrimSuffix(s, ".0") + " GB"
	case n >= mb:
		s = strconv.FormatInt((n+mb/2)/mb, 10) + " MB"
	case n > 0:
		s = strconv.FormatInt(max((n+kb/2)/kb, 1), 10) + " KB"
	default:
		s = "0 MB"
	}
	if decimalComma(locale) {
		s = strings.Replace(s, ".", ",", 1)
	}
	return s
}

// decimalComma reports whether a locale writes 1,5 rather than 1.5.
func decimalComma(locale string) bool {
	base, _, _ := strings.Cut(locale, "-")
	switch base {
	case "de", "es", "fr", "it", "pt", "nl", "pl", "ru", "tr", "sv", "da", "fi", "nb", "cs", "id", "vi":
		return true
	}
	return false
}
