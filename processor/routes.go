package processor

import (
	"context"
	"errors"
	"net/http"

	"github.com/esimflow/esimflow/shared/admin"
	"github.com/esimflow/esimflow/shared/httpjson"
	"github.com/esimflow/esimflow/shared/store"
)

// StateReader is what the state API reads.
type StateReader interface {
	Order(ctx context.Context, orderNo string) (store.Order, error)
	Profile(ctx context.Context, iccid string) (store.Profile, error)
}

// registerRoutes is the processor's part of the internal API.
func registerRoutes(a *admin.Server, st StateReader) {
	a.Handle("GET /v1/orders/{orderNo}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		o, err := st.Order(r.Context(), r.PathValue("orderNo"))
		answer(w, o, err, "order")
	}))
	a.Handle("GET /v1/profiles/{iccid}", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, err := st.Profile(r.Context(), r.PathValue("iccid"))
		answer(w, p, err, "profile")
	}))
}

func answer(w http.ResponseWriter, v any, err error, what string) {
	switch {
	case errors.Is(err, store.ErrNotFound):
		httpjson.Error(w, http.StatusNotFound, what+" not found")
	case err != nil:
		httpjson.Error(w, http.StatusServiceUnavailable, "store unavailable: "+err.Error())
	default:
		httpjson.Write(w, http.StatusOK, v)
	}
}
