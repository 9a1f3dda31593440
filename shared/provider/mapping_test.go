package provider_test

import (
	"strings"
	"testing"

	"github.com/esimflow/esimflow/shared/provider"
)

// TestParseMappingErrors: a file with an error is refused whole, and the
// error names the rule and the key.
func TestParseMappingErrors(t *testing.T) {
	const rule = `
events:
  - name: r
    when: [{path: kind, equals: x}]
    type: DATA_USAGE
    fields: {iccid: id, usedVolume: used}
`
	tests := []struct{ name, file, want string }{
		{"unknown key", "provider: p\nversion: \"1\"\nsignatur: {}\n" + rule, "field signatur not found"},
		{"bad name", "provider: P Q\nversion: \"1\"\n" + rule, `provider: "P Q"`},
		{"default name", "provider: esimaccess\nversion: \"1\"\n" + rule, "default provider"},
		{"no version", "provider: p\n" + rule, "version: missing"},
		{"no events", "provider: p\nversion: \"1\"\n", "events: none"},
		{"bad type", "provider: p\nversion: \"1\"\n" + strings.Replace(rule, "DATA_USAGE", "USAGE", 1), `events "r": type: "USAGE"`},
		{"no condition", "provider: p\nversion: \"1\"\n" + strings.Replace(rule, "when: [{path: kind, equals: x}]", "when: []", 1), `events "r": when: no condition`},
		{"bad regexp", "provider: p\nversion: \"1\"\n" + strings.Replace(rule, "equals: x", "matches: '('", 1), `events "r": when[0]: matches`},
		{"not a field", "provider: p\nversion: \"1\"\n" + strings.Replace(rule, "usedVolume", "used_volume", 1), `"used_volume" is no canonical field`},
		{"bad unit", "provider: p\nversion: \"1\"\n" + strings.Replace(rule, "usedVolume: used", "usedVolume: {path: used, unit: TB}", 1), `fields.usedVolume: unit: "TB"`},
		{"unit on a string", "provider: p\nversion: \"1\"\n" + strings.Replace(rule, "iccid: id", "iccid: {path: id, unit: MB}", 1), `fields.iccid: unit`},
		{"bad signature", "provider: p\nversion: \"1\"\nsignature: {scheme: hmac, algorithm: md5, header: X, encoding: hex}\n" + rule, `signature: algorithm: "md5"`},
		{"extract without a group", "provider: p\nversion: \"1\"\n" + strings.Replace(rule, "usedVolume: used", `usedVolume: {path: used, extract: '\d+'}`, 1), "fields.usedVolume: extract"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := provider.ParseMapping([]byte(tt.file))
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error %v, want one containing %q", err, tt.want)
			}
		})
	}
	if _, err := provider.ParseMapping([]byte("provider: p\nversion: \"1\"\n" + rule)); err != nil {
		t.Errorf("a valid file: %v", err)
	}
}
