package escape_test

import (
	"encoding/json"
	"testing"

	"github.com/esimflow/esimflow/shared/escape"
)

func TestLineAndText(t *testing.T) {
	for _, tt := range []struct{ in, line, text string }{
		{"8901234567890123456", "8901234567890123456", "8901234567890123456"},
		{"Zoë — ok", "Zoë — ok", "Zoë — ok"},
		{"a\nb\tc", `a\nb\tc`, "a\nb\tc"},
		{"a\r\nb", `a\r\nb`, "a\\r\nb"},
		{"\x1b[2J\x1b]0;pwned\x07", `\x1b[2J\x1b]0;pwned\x07`, `\x1b[2J\x1b]0;pwned\x07`},
		{"\u009b31m", `\u009b31m`, `\u009b31m`},
		{"abc\u202edcba", `abc\u202edcba`, `abc\u202edcba`},
		{"bad\xffbyte", `bad\xffbyte`, `bad\xffbyte`},
		{"del\x7f", `del\x7f`, `del\x7f`},
	} {
		if got := escape.Line(tt.in); got != tt.line {
			t.Errorf("Line(%q) = %q, want %q", tt.in, got, tt.line)
		}
		if got := escape.Text(tt.in); got != tt.text {
			t.Errorf("Text(%q) = %q, want %q", tt.in, got, tt.text)
		}
	}
}

func TestJSONKeepsTheValue(t *testing.T) {
	in := []byte("{\n  \"iccid\": \"89\u009b01\u202e\x7f\",\n  \"ok\": \"Zoë\"\n}")
	out := escape.JSON(in)
	var a, b map[string]string
	if err := json.Unmarshal(in, &a); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(out, &b); err != nil {
		t.Fatalf("%s: %v", out, err)
	}
	if a["iccid"] != b["iccid"] || a["ok"] != b["ok"] {
		t.Errorf("value changed: %q → %q", a, b)
	}
	if want := "{\n  \"iccid\": \"89\\u009b01\\u202e\\u007f\",\n  \"ok\": \"Zoë\"\n}"; string(out) != want {
		t.Errorf("JSON = %s, want %s", out, want)
	}
}
