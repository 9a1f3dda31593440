package ingest

import "net/http"

// routes is ingest's table of contents. The {token} forms carry the path
// token when ESIMFLOW_INGEST_TOKENS is set.
func routes(h *Handler) http.Handler {
	mux := http.NewServeMux()
	for _, p := range []string{"/webhooks/esim", "/api/webhooks/esim", "/webhooks/esim/{token}", "/api/webhooks/esim/{token}"} {
		mux.HandleFunc("POST "+p, h.Webhook)
		mux.HandleFunc("HEAD "+p, h.Probe)
	}
	return mux
}
