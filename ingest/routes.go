package ingest

import "net/http"

// routes is ingest's table of contents.
func routes(h *Handler) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /webhooks/esim", h.Webhook)
	mux.HandleFunc("POST /api/webhooks/esim", h.Webhook)
	return mux
}
