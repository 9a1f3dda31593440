// Package samples holds one sample event of each type and format the
// provider sends, for `esimflow webhook test`: the provider's documented
// examples and the eSIM Access envelope; and, under providers/, samples of
// the other providers' webhooks.
package samples

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"sort"
	"strings"
)

//go:embed *.json providers/*.json
var files embed.FS

// Sample is one event body with its type.
type Sample struct {
	Name string // file name without .json
	Type string // eventType or notifyType
	Body []byte
}

// All returns every sample, ordered by name.
func All() ([]Sample, error) {
	names, err := fs.Glob(files, "*.json")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	var out []Sample
	for _, n := range names {
		b, err := files.ReadFile(n)
		if err != nil {
			return nil, err
		}
		var head struct{ EventType, NotifyType string }
		if err := json.Unmarshal(b, &head); err != nil {
			return nil, fmt.Errorf("sample %s: %w", n, err)
		}
		typ := head.EventType
		if typ == "" {
			typ = head.NotifyType
		}
		if typ == "" {
			return nil, fmt.Errorf("sample %s names no eventType or notifyType", n)
		}
		out = append(out, Sample{Name: strings.TrimSuffix(n, ".json"), Type: typ, Body: b})
	}
	return out, nil
}

// ForProvider returns the samples of a provider other than the default
// (providers/<provider>_*.json): bodies shaped as the provider documents
// them, typed by the adapter that reads them, not here.
func ForProvider(name string) ([]Sample, error) {
	names, err := fs.Glob(files, "providers/"+name+"_*.json")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	var out []Sample
	for _, n := range names {
		b, err := files.ReadFile(n)
		if err != nil {
			return nil, err
		}
		out = append(out, Sample{Name: strings.TrimSuffix(strings.TrimPrefix(n, "providers/"), ".json"), Body: b})
	}
	return out, nil
}
