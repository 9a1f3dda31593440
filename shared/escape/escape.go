// Package escape makes untrusted text safe to print on a terminal or in a
// line-oriented log: event fields (an ICCID, an order number, an error a
// peer sent) must not start a new line that looks like another record, move
// the cursor, set the window title or hide text with bidirectional
// overrides. Control characters become Go-style escapes (\n, \x1b, \u009b),
// so what was sent stays readable; everything printable passes unchanged.
package escape

import (
	"fmt"
	"strings"
	"unicode/utf8"
)

// Line escapes every control character, newline and tab included: for a
// value printed inside one line or one table cell.
func Line(s string) string { return escapeString(s, false) }

// Text escapes control characters but keeps newlines and tabs: for a
// multi-line message printed as such.
func Text(s string) string { return escapeString(s, true) }

// JSON escapes, inside JSON text that encoding/json produced or accepted,
// what the encoder leaves raw but a terminal obeys: DEL, the C1 controls,
// the bidirectional controls and bytes that are not UTF-8 (which become
// U+FFFD). The result is the same JSON value.
func JSON(b []byte) []byte {
	if !needs(string(b), true, true) {
		return b
	}
	var out strings.Builder
	s := string(b)
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			out.WriteString(`\ufffd`)
		case r >= 0x20 && bad(r) || r == 0x7f:
			fmt.Fprintf(&out, `\u%04x`, r)
		default:
			out.WriteString(s[i : i+size])
		}
		i += size
	}
	return []byte(out.String())
}

func escapeString(s string, keepLines bool) string {
	if !needs(s, keepLines, false) {
		return s
	}
	var out strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&out, `\x%02x`, s[i])
		case keepLines && (r == '\n' || r == '\t'):
			out.WriteRune(r)
		case r == '\n':
			out.WriteString(`\n`)
		case r == '\r':
			out.WriteString(`\r`)
		case r == '\t':
			out.WriteString(`\t`)
		case r < 0x80 && bad(r):
			fmt.Fprintf(&out, `\x%02x`, r)
		case bad(r):
			fmt.Fprintf(&out, `\u%04x`, r)
		default:
			out.WriteString(s[i : i+size])
		}
		i += size
	}
	return out.String()
}

// needs reports whether s holds anything to escape.
func needs(s string, keepLines, inJSON bool) bool {
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			return true
		case inJSON && r < 0x20: // JSON's own whitespace between tokens
		case keepLines && (r == '\n' || r == '\t'):
		case bad(r):
			return true
		}
		i += size
	}
	return false
}

// bad reports the runes a terminal may act on: C0 and C1 controls, DEL,
// the line and paragraph separators, and the bidirectional controls (which
// reorder what is shown: "Trojan Source").
func bad(r rune) bool {
	switch {
	case r < 0x20, r == 0x7f, r >= 0x80 && r <= 0x9f:
		return true
	case r == 0x061c, r == 0x200e, r == 0x200f, r == 0x2028, r == 0x2029,
		r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069:
		return true
	}
	return false
}
