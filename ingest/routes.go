package ingest

import (
	"net/http"

	"github.com/esimflow/esimflow/shared/provider"
)

// webhookPaths are the webhook endpoints and the provider family each is
// for: the provider label of esimflow_webhook_last_received_timestamp_seconds.
// One family today (eSIM Access and the providers that post its format); a
// provider with a format of its own gets paths and a name here. The {token}
// forms carry the path token when ESIMFLOW_INGEST_TOKENS is set.
var webhookPaths = []struct{ path, provider string }{
	{"/webhooks/esim", providerESIMAccess},
	{"/api/webhooks/esim", providerESIMAccess},
	{"/webhooks/esim/{token}", providerESIMAccess},
	{"/api/webhooks/esim/{token}", providerESIMAccess},
}

const providerESIMAccess = provider.Default

// providerPaths are every provider's endpoints, by the adapter's name
// (/webhooks/airalo, /webhooks/esimaccess); the provider label is the name.
var providerPaths = []string{"/webhooks/{provider}", "/webhooks/{provider}/{token}"}

// routes is ingest's table of contents.
func routes(h *Handler) http.Handler {
	mux := http.NewServeMux()
	for _, p := range webhookPaths {
		mux.Handle("POST "+p.path, h.From(p.provider))
		mux.HandleFunc("HEAD "+p.path, h.Probe)
	}
	for _, p := range providerPaths {
		mux.HandleFunc("POST "+p, h.Provider)
		mux.HandleFunc("HEAD "+p, h.ProviderProbe)
	}
	return mux
}
