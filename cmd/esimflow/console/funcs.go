package console

import (
	"encoding/json"
	"html/template"
	"time"
)

// funcs are the templates' helpers.
var funcs = template.FuncMap{
	"when": func(t time.Time) string {
		if t.IsZero() {
			return "—"
		}
		return t.UTC().Format("2006-01-02 15:04:05") + " UTC"
	},
	"iso": func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
	"pct": func(f float64) string { return num(f) },
}

func jsonDecode(b []byte, v any) error { return json.Unmarshal(b, v) }
