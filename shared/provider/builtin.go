package provider

import (
	"embed"
	"fmt"
	"net/http"
	"time"
)

//go:embed builtin/*.yaml
var builtinFiles embed.FS

// Options are what the built-in adapters need from their process.
type Options struct {
	// SNSHosts are the host patterns (path.Match, e.g. sns.*.amazonaws.com)
	// an SNS signing certificate is fetched from and a SubscribeURL visited
	// on; nil means DefaultSNSHosts.
	SNSHosts []string
	// HTTPClient fetches certificates and confirms subscriptions; nil
	// means a client with a 5 s timeout that follows no redirect.
	HTTPClient *http.Client
}

// DefaultSNSHosts are AWS's SNS endpoints.
var DefaultSNSHosts = []string{"sns.*.amazonaws.com"}

// builtinMappings are the embedded files registered as adapters (Telna's
// is read by its SNS adapter).
var builtinMappings = []string{"airalo", "esimgo", "roamify", "oneglobal"}

// Builtins returns the built-in adapters: the default provider, the
// embedded mapping files, and Telna's SNS adapter.
func Builtins(opts Options) ([]Adapter, error) {
	out := []Adapter{ESIMAccess()}
	for _, name := range builtinMappings {
		m, err := builtinMapping(name)
		if err != nil {
			return nil, err
		}
		a, err := NewMapped(m)
		if err != nil {
			return nil, fmt.Errorf("built-in %s: %w", name, err)
		}
		out = append(out, a)
	}
	m, err := builtinMapping("telna")
	if err != nil {
		return nil, err
	}
	inner, err := compile(m)
	if err != nil {
		return nil, fmt.Errorf("built-in telna: %w", err)
	}
	out = append(out, newSNS(inner, opts))
	return out, nil
}

func builtinMapping(name string) (Mapping, error) {
	data, err := builtinFiles.ReadFile("builtin/" + name + ".yaml")
	if err != nil {
		return Mapping{}, fmt.Errorf("built-in %s: %w", name, err)
	}
	m, err := ParseMapping(data)
	if err != nil {
		return Mapping{}, fmt.Errorf("built-in %s: %w", name, err)
	}
	return m, nil
}

// Load returns the registry of a process: the built-in adapters, then the
// mapping files of dir ("" = none), which may replace a built-in of the
// same name.
func Load(dir string, opts Options) (*Registry, error) {
	adapters, err := Builtins(opts)
	if err != nil {
		return nil, err
	}
	if dir != "" {
		more, err := LoadDir(dir)
		if err != nil {
			return nil, err
		}
		adapters = append(adapters, more...)
	}
	return NewRegistry(adapters...), nil
}

func (o Options) client() *http.Client {
	if o.HTTPClient != nil {
		return o.HTTPClient
	}
	// No redirect: a certificate or a SubscribeURL is fetched from the
	// allowlisted host named, never from wherever it points.
	return &http.Client{Timeout: 5 * time.Second, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

func (o Options) hosts() []string {
	if o.SNSHosts != nil {
		return o.SNSHosts
	}
	return DefaultSNSHosts
}
