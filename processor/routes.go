package processor

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/esimflow/esimflow/shared/admin"
	"github.com/esimflow/esimflow/shared/httpjson"
	"github.com/esimflow/esimflow/shared/store"
	"github.com/esimflow/esimflow/shared/stream"
)

// StateReader is what the state API reads.
type StateReader interface {
	Order(ctx context.Context, orderNo string) (store.Order, error)
	Profile(ctx context.Context, iccid string) (store.Profile, error)
}

// api holds what the processor's routes read and change.
type api struct {
	state   StateReader
	streams Streams
	pub     Publisher
	names   stream.Names
	parked  *parkedLog
}

// registerRoutes is the processor's part of the internal API.
func registerRoutes(a *admin.Server, x api) {
	// State.
	a.Handle("GET /v1/orders/{orderNo}", http.HandlerFunc(x.order))
	a.Handle("GET /v1/profiles/{iccid}", http.HandlerFunc(x.profile))
	// Stored events (ESIM_EVENTS), raw, by stream sequence.
	a.Handle("GET /v1/events/{seq}", http.HandlerFunc(x.showEvent))
	// Dead letters (ESIM_DLQ).
	a.Handle("GET /v1/dlq", http.HandlerFunc(x.listDeadLetters))
	a.Handle("DELETE /v1/dlq", http.HandlerFunc(x.purgeDeadLetters))
	a.Handle("GET /v1/dlq/{seq}", http.HandlerFunc(x.showDeadLetter))
	a.Handle("POST /v1/dlq/{seq}/redrive", http.HandlerFunc(x.redriveDeadLetter))
	a.Handle("DELETE /v1/dlq/{seq}", http.HandlerFunc(x.deleteDeadLetter))
	// Parked events: unknown types and health checks.
	a.Handle("GET /v1/parked", http.HandlerFunc(x.listParked))
}

// orderView is an order with its profiles' current state.
type orderView struct {
	store.Order
	// ProfileStates are the order's profiles (same order as Profiles),
	// without their history; a profile listed but not yet stored is absent.
	ProfileStates []store.Profile `json:"profileStates"`
}

func (x api) order(w http.ResponseWriter, r *http.Request) {
	o, err := x.state.Order(r.Context(), r.PathValue("orderNo"))
	if err != nil {
		answer(w, nil, err, "order")
		return
	}
	v := orderView{Order: o, ProfileStates: []store.Profile{}}
	for _, iccid := range o.Profiles {
		p, err := x.state.Profile(r.Context(), iccid)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			answer(w, nil, err, "profile")
			return
		}
		p.History = nil
		v.ProfileStates = append(v.ProfileStates, p)
	}
	httpjson.Write(w, http.StatusOK, v)
}

// profile answers a profile with its status history, newest first;
// ?history=N keeps the last N transitions.
func (x api) profile(w http.ResponseWriter, r *http.Request) {
	limit := -1
	if s := r.URL.Query().Get("history"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 0 {
			httpjson.Error(w, http.StatusBadRequest, "history: want a number of transitions, 0 or more")
			return
		}
		limit = n
	}
	p, err := x.state.Profile(r.Context(), r.PathValue("iccid"))
	if err == nil && limit >= 0 && len(p.History) > limit {
		p.History = p.History[:limit]
	}
	answer(w, p, err, "profile")
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
