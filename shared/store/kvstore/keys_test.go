package kvstore

import (
	"regexp"
	"strings"
	"testing"
)

// validKey is NATS KV's rule for keys (nats.go's keyValid).
var validKey = regexp.MustCompile(`^[-/_=.a-zA-Z0-9]+$`)

func TestToken(t *testing.T) {
	hashed := func(got string) bool { return strings.HasPrefix(got, "==") && len(got) == 2+64 }
	cases := []struct {
		name, id string
		ok       func(got string) bool
	}{
		{"iccid", "8901234567890123456", is("8901234567890123456")},
		{"order number", "ORD-2024_01", is("ORD-2024_01")},
		{"intent id", "low_data:8901:80", is("low_data=3A8901=3A80")},
		{"dot", "a.b", is("a=2Eb")},
		{"escape-like id", "a=2Eb", is("a=3D2Eb")},
		{"wildcards and separators", "a b/c*>", is("a=20b=2Fc=2A=3E")},
		{"unicode", "é", is("=C3=A9")},
		{"empty", "", is("=")},
		{"lone dot", ".", is("=2E")},
		{"long plain id", strings.Repeat("x", maxTokenLen), is(strings.Repeat("x", maxTokenLen))},
		{"long escaped id", strings.Repeat("ü", 300), hashed},
		{"long escaped id, one byte more", strings.Repeat("ü", 300) + "x", hashed},
	}
	seen := map[string]string{}
	for _, c := range cases {
		got := token(c.id)
		if !c.ok(got) {
			t.Errorf("%s: token = %q", c.name, got)
		}
		if key := profileKey(c.id); !validKey.MatchString(key) || strings.HasSuffix(key, ".") || strings.Contains(key, "..") {
			t.Errorf("%s: %q is not a valid KV key", c.name, key)
		}
		if other, dup := seen[got]; dup {
			t.Errorf("%s: same token as %s: %q", c.name, other, got)
		}
		seen[got] = c.name
	}
}

func is(want string) func(string) bool { return func(got string) bool { return got == want } }
