package notifier

import (
	"context"
	"net/http"

	"github.com/esimflow/esimflow/shared/admin"
	"github.com/esimflow/esimflow/shared/httpjson"
	"github.com/esimflow/esimflow/shared/store"
)

// LogReader is what the notifications API reads.
type LogReader interface {
	Notifications(ctx context.Context, iccid string) ([]store.Notification, error)
}

// registerRoutes is the notifier's part of the internal API.
func registerRoutes(a *admin.Server, log LogReader) {
	a.Handle("GET /v1/notifications", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		iccid := r.URL.Query().Get("iccid")
		if iccid == "" {
			httpjson.Error(w, http.StatusBadRequest, "query parameter iccid is required")
			return
		}
		entries, err := log.Notifications(r.Context(), iccid)
		if err != nil {
			httpjson.Error(w, http.StatusServiceUnavailable, "store unavailable: "+err.Error())
			return
		}
		httpjson.Write(w, http.StatusOK, map[string]any{"iccid": iccid, "notifications": entries})
	}))
}
