package console_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/esimflow/esimflow/cmd/esimflow/console"
	"github.com/esimflow/esimflow/processor"
	"github.com/esimflow/esimflow/shared/admin"
	"github.com/esimflow/esimflow/shared/httpjson"
	"github.com/esimflow/esimflow/shared/intent"
	"github.com/esimflow/esimflow/shared/store"
)

// fakeAPI answers the internal API's routes from memory, in the routes'
// JSON shapes, so the pages can be tested and timed without NATS. The
// all-in-one tests run the console against the real routes.
type fakeAPI struct {
	mu       sync.Mutex
	profiles map[string]store.Profile
	orders   map[string]store.Order
	notes    map[string][]store.Notification
	contacts map[string]store.Contact
	dlq      []processor.DeadLetter
	redriven []uint64
	// eventFields adds fields to a profile's history entries by index
	// (newest first), as a state that records each event's would have.
	eventFields map[int]map[string]any
}

var t0 = time.Date(2026, 11, 1, 8, 0, 0, 0, time.UTC)

// newFake holds one eSIM with events state changes and a dead-lettered
// activation message waiting for its contact.
func newFake(events int) *fakeAPI {
	f := &fakeAPI{profiles: map[string]store.Profile{}, orders: map[string]store.Order{}, notes: map[string][]store.Notification{}, contacts: map[string]store.Contact{}}
	p := store.Profile{ICCID: "8901000000000000001", OrderNo: "ORD1", TransactionID: "tx-1", Status: "IN_USE", UsedVolume: 800 << 20, TotalVolume: 1 << 30, UsagePercent: 78.1,
		Validity: &store.Validity{Remain: 3, Total: 30, Unit: "DAY", ExpiresAt: t0.Add(72 * time.Hour)}, UpdatedAt: t0}
	statuses := []string{"GOT_RESOURCE", "ACTIVATED", "IN_USE", "SUSPENDED"}
	for i := events - 1; i >= 0; i-- { // newest first
		p.History = append(p.History, store.Transition{Status: statuses[i%4], PreviousStatus: statuses[(i+3)%4], At: t0.Add(time.Duration(i) * time.Minute)})
	}
	f.profiles[p.ICCID] = p
	f.orders["ORD1"] = store.Order{OrderNo: "ORD1", TransactionID: "tx-1", Status: "GOT_RESOURCE", Profiles: []string{p.ICCID},
		History: []store.Transition{{Status: "GOT_RESOURCE", At: t0}}, UpdatedAt: t0}
	for i := range 100 {
		f.notes[p.ICCID] = append(f.notes[p.ICCID], store.Notification{ID: fmt.Sprintf("low_data:%s:%d", p.ICCID, i), Kind: "low_data", ICCID: p.ICCID,
			Threshold: 80, Channel: "email", Status: "failed", Attempt: 1, Error: "smtp: 451 try later", SentAt: t0.Add(time.Hour + time.Duration(i)*time.Second)})
	}
	f.notes[p.ICCID] = append(f.notes[p.ICCID], store.Notification{ID: intent.ActivationID(p.ICCID), Kind: "activation", ICCID: p.ICCID,
		Status: "dead_lettered", Error: "no contact for transaction tx-1 after 15m0s", SentAt: t0.Add(2 * time.Hour)})
	body, _ := json.Marshal(intent.Intent{ID: intent.ActivationID(p.ICCID), Kind: intent.Activation, ICCID: p.ICCID, OrderNo: "ORD1", TransactionID: "tx-1"})
	// Another eSIM's activation waits for its contact.
	f.notes["8901000000000000002"] = []store.Notification{{ID: intent.ActivationID("8901000000000000002"), Kind: "activation", ICCID: "8901000000000000002", TransactionID: "tx-2",
		Status: "waiting", Error: `no contact for transactionId "tx-2" or iccid 8901000000000000002 yet: waiting up to 15m0s`, SentAt: t0.Add(150 * time.Minute)}}
	f.dlq = []processor.DeadLetter{
		{Seq: 1, Source: "events", OriginalSubject: "esim.events.PROFILE_STATUS", OriginalSeq: 7, Deliveries: 5, Error: "decode: no status", DeadAt: t0, Body: json.RawMessage(`{"eventType":"PROFILE_STATUS"}`)},
		{Seq: 2, Source: "notify", OriginalSubject: "esim.notify.activation", Deliveries: 9, Error: "no contact for transaction tx-1 after 15m0s", DedupeKey: intent.ActivationID(p.ICCID), DeadAt: t0.Add(2 * time.Hour), Body: body},
	}
	return f
}

// register puts the fake's routes on a, as the processor and notifier do;
// only those keep accepts, when it is set.
func (f *fakeAPI) register(a apiMux, keep func(pattern string) bool) {
	if keep != nil {
		a = filtered{a, keep}
	}
	h := func(fn func(w http.ResponseWriter, r *http.Request)) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			f.mu.Lock()
			defer f.mu.Unlock()
			fn(w, r)
		})
	}
	a.Handle("GET /v1/profiles/{iccid}", h(func(w http.ResponseWriter, r *http.Request) {
		p, ok := f.profiles[r.PathValue("iccid")]
		if !ok {
			httpjson.Error(w, 404, "profile not found")
			return
		}
		if r.URL.Query().Get("history") == "0" {
			p.History = nil
		}
		if len(f.eventFields) == 0 || p.History == nil {
			httpjson.Write(w, 200, p)
			return
		}
		b, _ := json.Marshal(p)
		var m map[string]any
		_ = json.Unmarshal(b, &m)
		hist := m["history"].([]any)
		for i, fields := range f.eventFields {
			for k, v := range fields {
				hist[i].(map[string]any)[k] = v
			}
		}
		httpjson.Write(w, 200, m)
	}))
	a.Handle("GET /v1/orders/{orderNo}", h(func(w http.ResponseWriter, r *http.Request) {
		o, ok := f.orders[r.PathValue("orderNo")]
		if !ok {
			httpjson.Error(w, 404, "order not found")
			return
		}
		var states []store.Profile
		for _, iccid := range o.Profiles {
			p := f.profiles[iccid]
			p.History = nil
			states = append(states, p)
		}
		httpjson.Write(w, 200, map[string]any{"orderNo": o.OrderNo, "transactionId": o.TransactionID, "status": o.Status, "profiles": o.Profiles, "history": o.History, "profileStates": states})
	}))
	a.Handle("GET /v1/notifications", h(func(w http.ResponseWriter, r *http.Request) {
		iccid := r.URL.Query().Get("iccid")
		httpjson.Write(w, 200, map[string]any{"iccid": iccid, "notifications": append([]store.Notification{}, f.notes[iccid]...)})
	}))
	a.Handle("GET /v1/notifications/open", h(func(w http.ResponseWriter, r *http.Request) {
		latest := map[string]store.Notification{}
		for _, log := range f.notes {
			for _, n := range log {
				latest[n.ID] = n
			}
		}
		out := []store.Notification{}
		for _, n := range latest {
			if store.OpenStatus(n.Status) {
				out = append(out, n)
			}
		}
		sort.Slice(out, func(i, j int) bool { return out[i].SentAt.After(out[j].SentAt) })
		httpjson.Write(w, 200, map[string]any{"notifications": out})
	}))
	a.Handle("GET /v1/notifications/{id}/preview", h(func(w http.ResponseWriter, r *http.Request) {
		for _, n := range f.notes[r.URL.Query().Get("iccid")] {
			if n.ID == r.PathValue("id") {
				httpjson.Write(w, 200, map[string]any{"id": n.ID, "kind": n.Kind, "iccid": n.ICCID, "locale": "en", "channels": []string{},
					"to": map[string]any{}, "subject": "Your eSIM is active", "text": "Hello,\n\nYour eSIM ending in 0001 is now active <and connected>.", "html": "<p>Hello</p>"})
				return
			}
		}
		httpjson.Error(w, 404, "no such message in the eSIM's notification log")
	}))
	a.Handle("GET /v1/contacts/{tx}", h(func(w http.ResponseWriter, r *http.Request) {
		c, ok := f.contacts[r.PathValue("tx")]
		if !ok {
			httpjson.Error(w, 404, "no such contact")
			return
		}
		httpjson.Write(w, 200, c)
	}))
	a.Handle("GET /v1/contacts", h(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		for _, c := range f.contacts {
			if (q.Get("email") != "" && c.Email == q.Get("email")) || (q.Get("phone") != "" && c.Phone == q.Get("phone")) {
				httpjson.Write(w, 200, c)
				return
			}
		}
		httpjson.Error(w, 404, "no such contact")
	}))
	a.Handle("PUT /v1/contacts/{tx}", h(func(w http.ResponseWriter, r *http.Request) {
		var c store.Contact
		if err := json.NewDecoder(r.Body).Decode(&c); err != nil {
			httpjson.Error(w, 400, err.Error())
			return
		}
		if c.Email != "" && !strings.Contains(c.Email, "@") {
			httpjson.Error(w, 400, "email: want an address")
			return
		}
		c.TransactionID = r.PathValue("tx")
		f.contacts[c.TransactionID] = c
		httpjson.Write(w, 201, c)
	}))
	a.Handle("GET /v1/dlq", h(func(w http.ResponseWriter, r *http.Request) {
		out := []processor.DeadLetter{}
		for _, d := range f.dlq {
			if src := r.URL.Query().Get("source"); src == "" || src == d.Source {
				d.Body = nil
				out = append(out, d)
			}
		}
		httpjson.Write(w, 200, map[string]any{"deadLetters": out, "next": 0})
	}))
	a.Handle("DELETE /v1/dlq", h(func(w http.ResponseWriter, r *http.Request) {
		n := len(f.dlq)
		f.dlq = nil
		httpjson.Write(w, 200, map[string]any{"purged": n})
	}))
	find := func(w http.ResponseWriter, r *http.Request) int {
		seq, _ := strconv.ParseUint(r.PathValue("seq"), 10, 64)
		for i, d := range f.dlq {
			if d.Seq == seq {
				return i
			}
		}
		httpjson.Error(w, 404, "dead letter not found")
		return -1
	}
	a.Handle("GET /v1/dlq/{seq}", h(func(w http.ResponseWriter, r *http.Request) {
		if i := find(w, r); i >= 0 {
			httpjson.Write(w, 200, f.dlq[i])
		}
	}))
	a.Handle("POST /v1/dlq/{seq}/redrive", h(func(w http.ResponseWriter, r *http.Request) {
		if i := find(w, r); i >= 0 {
			f.redriven = append(f.redriven, f.dlq[i].Seq)
			httpjson.Write(w, 200, processor.Redriven{Seq: f.dlq[i].Seq, Stream: "ESIM_NOTIFY", StreamSeq: 42})
			f.dlq = append(f.dlq[:i], f.dlq[i+1:]...)
		}
	}))
	a.Handle("DELETE /v1/dlq/{seq}", h(func(w http.ResponseWriter, r *http.Request) {
		if i := find(w, r); i >= 0 {
			httpjson.Write(w, 200, map[string]any{"deleted": f.dlq[i].Seq})
			f.dlq = append(f.dlq[:i], f.dlq[i+1:]...)
		}
	}))
	a.Handle("GET /v1/events/{seq}", h(func(w http.ResponseWriter, r *http.Request) {
		httpjson.Write(w, 200, processor.StoredEvent{Seq: 7, Subject: "esim.events.PROFILE_STATUS", ReceivedAt: t0,
			Headers: map[string][]string{"Esimflow-Provider": {"airalo"}, "Esimflow-Adapter": {"airalo/1"}, "Nats-Msg-Id": {"a:airalo:123"}, "Esimflow-Source": {"poll"}}, Body: json.RawMessage(`{"eventType":"PROFILE_STATUS"}`)})
	}))
	a.Handle("GET /v1/status", h(func(w http.ResponseWriter, r *http.Request) {
		httpjson.Write(w, 200, admin.Status{Streams: []admin.StreamStatus{{Name: "ESIM_EVENTS", Messages: 10, Consumers: []admin.ConsumerStatus{{Name: "processor", Pending: 3, AckPending: 1}}},
			{Name: "ESIM_NOTIFY", Messages: 4, Consumers: []admin.ConsumerStatus{{Name: "notifier", AckPending: 1, Redelivered: 1}}}}})
	}))
}

type apiMux interface {
	Handle(pattern string, h http.Handler)
}

type filtered struct {
	apiMux
	keep func(string) bool
}

func (f filtered) Handle(p string, h http.Handler) {
	if f.keep(p) {
		f.apiMux.Handle(p, h)
	}
}

// rig is a console on an admin server with the fake's routes, guarded as
// the services' servers are.
type rig struct {
	h    http.Handler
	adm  *admin.Server
	fake *fakeAPI
	pats []string
}

// recorder notes the patterns the console registers, for the route-by-route
// security test.
type recorder struct {
	*admin.Server
	pats *[]string
}

func (r recorder) HandlePage(p string, h http.Handler) {
	*r.pats = append(*r.pats, p)
	r.Server.HandlePage(p, h)
}

func newRig(t testing.TB, token string, events int) *rig {
	t.Helper()
	a := admin.NewWithOptions(admin.Options{Token: token, HostCheck: true, RequestHeaderCheck: true, ListenAddr: "127.0.0.1:8081"})
	f := newFake(events)
	f.register(a, nil)
	c, err := console.New(console.Options{API: a.Handler(), TokenRequired: token != "", Now: func() time.Time { return t0.Add(3 * time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{h: a.Handler(), adm: a, fake: f}
	c.Register(recorder{a, &r.pats})
	return r
}
