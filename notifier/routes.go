package notifier

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/esimflow/esimflow/shared/admin"
	"github.com/esimflow/esimflow/shared/httpjson"
	"github.com/esimflow/esimflow/shared/intent"
	"github.com/esimflow/esimflow/shared/store"
)

// APIStore is what the notifier's API reads and writes.
type APIStore interface {
	store.Contacts
	Notifications(ctx context.Context, iccid string) ([]store.Notification, error)
	OpenNotifications(ctx context.Context, limit int) ([]store.Notification, error)
}

// previewer renders a logged message now (Handler.preview).
type previewer func(ctx context.Context, iccid, id string) (Preview, error)

// registerRoutes is the notifier's part of the internal API.
func registerRoutes(a *admin.Server, st APIStore, preview previewer, announce func(keys ...string)) {
	api := api{st: st, preview: preview, announce: announce}
	a.Handle("PUT /v1/contacts/{transactionId}", http.HandlerFunc(api.putContact))
	a.Handle("GET /v1/contacts/{transactionId}", http.HandlerFunc(api.getContact))
	a.Handle("DELETE /v1/contacts/{transactionId}", http.HandlerFunc(api.deleteContact))
	a.Handle("GET /v1/contacts", http.HandlerFunc(api.findContact))
	a.Handle("GET /v1/notifications", http.HandlerFunc(api.notifications))
	a.Handle("GET /v1/notifications/open", http.HandlerFunc(api.openNotifications))
	a.Handle("GET /v1/notifications/{id}/preview", http.HandlerFunc(api.previewNotification))
}

type api struct {
	st      APIStore
	preview previewer
	// announce wakes the messages waiting for a contact just stored.
	announce func(keys ...string)
}

// putContact registers or replaces a contact: 201 when new, 200 when replaced.
func (a api) putContact(w http.ResponseWriter, r *http.Request) {
	txID := r.PathValue("transactionId")
	var body contactBody
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxContactBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&body); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			httpjson.Error(w, http.StatusRequestEntityTooLarge, "body larger than 64 KiB")
			return
		}
		httpjson.Error(w, http.StatusBadRequest, "body: want a JSON contact {name, email, phone, locale, timeZone, channels, optOut, iccids}: "+err.Error())
		return
	}
	if dec.More() {
		httpjson.Error(w, http.StatusBadRequest, "body: one JSON object, please")
		return
	}
	c, err := body.contact(txID)
	if err != nil {
		httpjson.Error(w, http.StatusBadRequest, err.Error())
		return
	}
	c.UpdatedAt = time.Now().UTC()
	_, err = a.st.Contact(r.Context(), txID)
	status := http.StatusOK
	switch {
	case errors.Is(err, store.ErrNotFound):
		status = http.StatusCreated
	case err != nil:
		unavailable(w, err)
		return
	}
	if err := a.st.PutContact(r.Context(), c); err != nil {
		unavailable(w, err)
		return
	}
	keys := []string{intent.WakeTx(c.TransactionID)}
	for _, iccid := range c.ICCIDs {
		keys = append(keys, intent.WakeICCID(iccid))
	}
	a.announce(keys...)
	httpjson.Write(w, status, c)
}

func (a api) getContact(w http.ResponseWriter, r *http.Request) {
	a.writeContact(w, r, func(ctx context.Context) (store.Contact, error) {
		return a.st.Contact(ctx, r.PathValue("transactionId"))
	})
}

// findContact: GET /v1/contacts?iccid= | ?email= | ?phone= — the contact
// that lists the eSIM, or has the email (any case) or phone.
func (a api) findContact(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	switch {
	case q.Get("iccid") != "":
		iccid := q.Get("iccid")
		a.writeContact(w, r, func(ctx context.Context) (store.Contact, error) { return a.st.ContactByICCID(ctx, iccid) })
	case q.Get("email") != "" || q.Get("phone") != "":
		address := q.Get("email") + q.Get("phone")
		if q.Get("email") != "" && q.Get("phone") != "" {
			httpjson.Error(w, http.StatusBadRequest, "one of email or phone, please")
			return
		}
		a.writeContact(w, r, func(ctx context.Context) (store.Contact, error) { return a.st.ContactByAddress(ctx, address) })
	default:
		httpjson.Error(w, http.StatusBadRequest, "query parameter iccid, email or phone is required")
	}
}

func (a api) writeContact(w http.ResponseWriter, r *http.Request, read func(context.Context) (store.Contact, error)) {
	c, err := read(r.Context())
	switch {
	case errors.Is(err, store.ErrNotFound):
		httpjson.Error(w, http.StatusNotFound, "no such contact")
	case err != nil:
		unavailable(w, err)
	default:
		httpjson.Write(w, http.StatusOK, c)
	}
}

func (a api) deleteContact(w http.ResponseWriter, r *http.Request) {
	err := a.st.DeleteContact(r.Context(), r.PathValue("transactionId"))
	switch {
	case errors.Is(err, store.ErrNotFound):
		httpjson.Error(w, http.StatusNotFound, "no such contact")
	case err != nil:
		unavailable(w, err)
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}

func (a api) notifications(w http.ResponseWriter, r *http.Request) {
	iccid := r.URL.Query().Get("iccid")
	if iccid == "" {
		httpjson.Error(w, http.StatusBadRequest, "query parameter iccid is required")
		return
	}
	entries, err := a.st.Notifications(r.Context(), iccid)
	if err != nil {
		unavailable(w, err)
		return
	}
	httpjson.Write(w, http.StatusOK, map[string]any{"iccid": iccid, "notifications": entries})
}

// openNotifications: GET /v1/notifications/open?limit= — the messages not
// out yet and not dead-lettered: each intent whose latest log entry is
// waiting, failed or retried_unknown, with that entry, newest first.
func (a api) openNotifications(w http.ResponseWriter, r *http.Request) {
	limit := 100
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > store.OpenNotificationLimit {
			httpjson.Error(w, http.StatusBadRequest, "limit: want 1 to "+strconv.Itoa(store.OpenNotificationLimit))
			return
		}
		limit = n
	}
	entries, err := a.st.OpenNotifications(r.Context(), limit)
	if err != nil {
		unavailable(w, err)
		return
	}
	httpjson.Write(w, http.StatusOK, map[string]any{"notifications": entries})
}

// previewNotification: GET /v1/notifications/{id}/preview?iccid= — the
// message of a logged intent rendered now (see Preview).
func (a api) previewNotification(w http.ResponseWriter, r *http.Request) {
	iccid := r.URL.Query().Get("iccid")
	if iccid == "" {
		httpjson.Error(w, http.StatusBadRequest, "query parameter iccid is required")
		return
	}
	p, err := a.preview(r.Context(), iccid, r.PathValue("id"))
	switch {
	case errors.Is(err, store.ErrNotFound):
		httpjson.Error(w, http.StatusNotFound, "no such message in the eSIM's notification log")
	case err != nil:
		httpjson.Error(w, http.StatusServiceUnavailable, "preview: "+err.Error())
	default:
		httpjson.Write(w, http.StatusOK, p)
	}
}

func unavailable(w http.ResponseWriter, err error) {
	httpjson.Error(w, http.StatusServiceUnavailable, "store unavailable: "+err.Error())
}
