package main

import (
	"io"

	"github.com/esimflow/esimflow/shared/escape"
)

// What the operator commands print comes from the API, and through it from
// provider events and peers' error messages: each value is escaped before it
// reaches the terminal, so a newline in an ICCID cannot forge a table row and
// an ANSI or OSC sequence is shown, not obeyed.

// cell is a value for one line or table cell: every control character
// escaped, newlines and tabs included.
func cell(s string) string { return escape.Line(s) }

// text is a multi-line value printed as such: control characters escaped,
// newlines and tabs kept.
func text(s string) string { return escape.Text(s) }

// writeJSON writes JSON text with what a terminal would obey escaped (the
// encoder leaves DEL, C1 and bidi controls raw); the value is unchanged.
func writeJSON(w io.Writer, b []byte) error {
	_, err := w.Write(escape.JSON(b))
	return err
}
