package console

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/esimflow/esimflow/processor"
	"github.com/esimflow/esimflow/shared/intent"
	"github.com/esimflow/esimflow/shared/store"
)

// maxRows bounds the rows a list page reads from the API: a page stays
// fast and small however many dead letters pile up.
const maxRows = 500

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	if !c.tokenRequired {
		http.Redirect(w, r, "/console/", http.StatusSeeOther)
		return
	}
	c.render(w, http.StatusOK, "login", view{Title: "Log in", Page: loginView{Next: safeNext(r.URL.Query().Get("next"))}})
}

type loginView struct{ Next, Error string }

// login checks the token through the API (so a wrong one counts against the
// client's failed-attempt budget) and keeps it in the cookie.
func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "form: "+err.Error(), http.StatusBadRequest)
		return
	}
	next := safeNext(r.PostForm.Get("next"))
	if !c.tokenRequired {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	token := strings.TrimSpace(r.PostForm.Get("token"))
	s := &session{token: token, r: r}
	status, _, err := c.call(s, http.MethodGet, SessionRoute, nil, nil)
	switch {
	case err != nil:
		c.fail(w, nil, err)
	case token != "" && status == http.StatusNoContent:
		http.SetCookie(w, c.cookie(r, token, 12*3600))
		http.Redirect(w, r, next, http.StatusSeeOther)
	case status == http.StatusTooManyRequests:
		c.render(w, http.StatusTooManyRequests, "login", view{Title: "Log in", Page: loginView{Next: next, Error: "Too many wrong tokens from your address: wait a minute, then try again."}})
	default:
		c.render(w, http.StatusUnauthorized, "login", view{Title: "Log in", Page: loginView{Next: next, Error: "That is not the admin token (ESIMFLOW_ADMIN_TOKEN)."}})
	}
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, c.cookie(r, "", -1))
	http.Redirect(w, r, "/console/login", http.StatusSeeOther)
}

// safeNext keeps a post-login redirect on the console: never another host.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/console/") || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") {
		return "/console/"
	}
	return next
}

// ---- search ----

type searchView struct {
	Q        string
	Message  string
	Order    *store.Order
	Contact  *store.Contact
	Profiles []store.Profile
}

func (c *Console) home(_ http.ResponseWriter, _ *session) (string, view, error) {
	return "search", view{Title: "Search", Nav: "search", Page: searchView{}}, nil
}

// search finds an eSIM by ICCID (straight to its page), an order by its
// number, or a customer's contact by transactionId, email or phone.
func (c *Console) search(w http.ResponseWriter, s *session) (string, view, error) {
	q := strings.TrimSpace(s.r.URL.Query().Get("q"))
	v := searchView{Q: q}
	out := view{Title: "Search", Nav: "search", Page: &v}
	if q == "" {
		return "search", out, nil
	}
	esc := url.PathEscape(q)
	var p store.Profile
	switch err := c.get(s, "/v1/profiles/"+esc+"?history=0", &p); {
	case err == nil:
		http.Redirect(w, s.r, "/console/esims/"+esc, http.StatusSeeOther)
		return "", view{}, nil
	case !isNotFound(err):
		return "", view{}, err
	}
	var o struct {
		store.Order
		ProfileStates []store.Profile `json:"profileStates"`
	}
	switch err := c.get(s, "/v1/orders/"+esc, &o); {
	case err == nil:
		v.Order, v.Profiles = &o.Order, o.ProfileStates
		return "search", out, nil
	case !isNotFound(err):
		return "", view{}, err
	}
	var ct store.Contact
	path := "/v1/contacts/" + esc
	switch {
	case strings.Contains(q, "@"):
		path = "/v1/contacts?email=" + url.QueryEscape(q)
	case strings.HasPrefix(q, "+"):
		path = "/v1/contacts?phone=" + url.QueryEscape(q)
	}
	switch err := c.get(s, path, &ct); {
	case err == nil:
		v.Contact = &ct
		for _, iccid := range ct.ICCIDs {
			var p store.Profile
			if err := c.get(s, "/v1/profiles/"+url.PathEscape(iccid)+"?history=0", &p); err == nil {
				v.Profiles = append(v.Profiles, p)
			}
		}
		return "search", out, nil
	case !isNotFound(err):
		// A 400 says the text is no transaction id, email or phone.
		var ae *apiError
		if !errors.As(err, &ae) || ae.status != http.StatusBadRequest {
			return "", view{}, err
		}
	}
	v.Message = "No eSIM (ICCID), order number, transaction id, email or phone matches “" + q + "”."
	return "search", out, nil
}

// ---- an eSIM's page ----

type esimView struct {
	P           store.Profile
	Order       *store.Order
	Contact     *store.Contact
	Timeline    []entry
	Used, Total string
	Percent     float64
	Events      int // state changes shown
	Messages    int
	Undelivered int
	// Redrive are the dead letters of the undelivered messages;
	// TransactionID is the order's, under which the contact is kept.
	Redrive       []string
	TransactionID string
}

// entry is one line of an eSIM's timeline.
type entry struct {
	At     time.Time
	Kind   string // state, order, message
	Title  string
	Detail string
	Tone   string // ok, bad, muted, "" — the badge colour, with a word beside it
	Status string
	Error  string
	Count  int // identical consecutive entries folded into this one
}

func (c *Console) esim(_ http.ResponseWriter, s *session) (string, view, error) {
	iccid := s.r.PathValue("iccid")
	esc := url.PathEscape(iccid)
	var v esimView
	if err := c.get(s, "/v1/profiles/"+esc, &v.P); err != nil {
		return "", view{}, err
	}
	var notes struct {
		Notifications []store.Notification `json:"notifications"`
	}
	if err := c.get(s, "/v1/notifications?iccid="+url.QueryEscape(iccid), &notes); err != nil {
		return "", view{}, err
	}
	if v.P.OrderNo != "" {
		var o store.Order
		if err := c.get(s, "/v1/orders/"+url.PathEscape(v.P.OrderNo), &o); err == nil {
			v.Order = &o
		} else if !isNotFound(err) {
			return "", view{}, err
		}
	}
	var ct store.Contact
	path := "/v1/contacts?iccid=" + url.QueryEscape(iccid)
	if tx := v.P.TransactionID; tx != "" {
		path = "/v1/contacts/" + url.PathEscape(tx)
	} else if v.Order != nil && v.Order.TransactionID != "" {
		path = "/v1/contacts/" + url.PathEscape(v.Order.TransactionID)
	}
	if err := c.get(s, path, &ct); err == nil {
		v.Contact = &ct
	} else if !isNotFound(err) {
		return "", view{}, err
	}
	v.Percent = min(max(v.P.UsagePercent, 0), 100)
	v.Used, v.Total = bytesize(v.P.UsedVolume), bytesize(v.P.TotalVolume)
	v.Timeline = timeline(v.P, v.Order, notes.Notifications)
	v.Events, v.Messages = len(v.P.History), len(notes.Notifications)
	sent := map[string]bool{}
	for _, n := range notes.Notifications {
		if n.Status == "sent" || n.Status == "suppressed" {
			sent[n.ID] = true
		}
	}
	bad := map[string]bool{}
	for _, n := range notes.Notifications {
		if !sent[n.ID] && (n.Status == "failed" || n.Status == "dead_lettered") {
			bad[n.ID] = true
		}
	}
	v.Undelivered = len(bad)
	if len(bad) > 0 {
		// The dead letters of those messages, found by the intent id their
		// original was published with: what a fix re-drives.
		letters, err := c.deadLetterList(s, "notify")
		if err != nil {
			return "", view{}, err
		}
		for _, d := range letters {
			if bad[d.DedupeKey] {
				v.Redrive = append(v.Redrive, strconv.FormatUint(d.Seq, 10))
			}
		}
	}
	v.TransactionID = v.P.TransactionID
	if v.TransactionID == "" && v.Order != nil {
		v.TransactionID = v.Order.TransactionID
	}
	return "esim", view{Title: "eSIM " + iccid, Nav: "search", Page: &v}, nil
}

// timeline merges the profile's and order's status changes with the
// messages, oldest first. Within one instant a state change comes before the
// message it caused. Identical consecutive lines fold into one with a count
// (a provider's retries, a message retried with the same error).
func timeline(p store.Profile, o *store.Order, notes []store.Notification) []entry {
	out := make([]entry, 0, len(p.History)+len(notes)+4)
	for i := len(p.History) - 1; i >= 0; i-- {
		t := p.History[i]
		d := ""
		if t.PreviousStatus != "" {
			d = "from " + t.PreviousStatus
		}
		if t.SmdpStatus != "" {
			d = strings.TrimSpace(d + " · SM-DP+ " + t.SmdpStatus)
		}
		out = append(out, entry{At: t.At, Kind: "state", Title: "eSIM " + t.Status, Detail: d, Count: 1})
	}
	if o != nil {
		for i := len(o.History) - 1; i >= 0; i-- {
			t := o.History[i]
			out = append(out, entry{At: t.At, Kind: "order", Title: "Order " + o.OrderNo + " " + t.Status, Count: 1})
		}
	}
	for _, n := range notes {
		title := "Message " + n.Kind
		if n.Threshold > 0 {
			title += " " + strconv.Itoa(n.Threshold) + " %"
		}
		d := ""
		if n.Channel != "" {
			d = "by " + n.Channel
		}
		if n.Attempt > 0 {
			d = strings.TrimSpace(d + " · attempt " + strconv.Itoa(n.Attempt))
		}
		out = append(out, entry{At: n.SentAt, Kind: "message", Title: title, Detail: d, Status: n.Status, Tone: tone(n.Status), Error: n.Error, Count: 1})
	}
	rank := map[string]int{"order": 0, "state": 1, "message": 2}
	sort.SliceStable(out, func(i, j int) bool {
		if !out[i].At.Equal(out[j].At) {
			return out[i].At.Before(out[j].At)
		}
		return rank[out[i].Kind] < rank[out[j].Kind]
	})
	folded := out[:0]
	for _, e := range out {
		if n := len(folded); n > 0 {
			last := &folded[n-1]
			if last.Kind == e.Kind && last.Title == e.Title && last.Detail == e.Detail && last.Status == e.Status && last.Error == e.Error {
				last.Count++
				continue
			}
		}
		folded = append(folded, e)
	}
	return folded
}

func tone(status string) string {
	switch status {
	case "sent":
		return "ok"
	case "failed", "dead_lettered", "retried_unknown":
		return "bad"
	case "suppressed":
		return "muted"
	}
	return ""
}

// ---- a stored event ----

type eventView struct {
	E    processor.StoredEvent
	Body string
}

func (c *Console) event(_ http.ResponseWriter, s *session) (string, view, error) {
	var v eventView
	if err := c.get(s, "/v1/events/"+url.PathEscape(s.r.PathValue("seq")), &v.E); err != nil {
		return "", view{}, err
	}
	v.Body = pretty(v.E.Body, v.E.BodyRaw)
	return "event", view{Title: "Event " + strconv.FormatUint(v.E.Seq, 10), Nav: "dlq", Page: &v}, nil
}

// ---- undelivered messages ----

type undeliveredView struct {
	Kind, Channel, Age string
	Kinds              []string
	Channels           []string
	Ages               []option
	Rows               []undeliveredRow
	Total              int // dead letters of ESIM_NOTIFY before the filters
	Waiting            int // intents delivered to the notifier and not acked: retrying or waiting
	Redelivered        int
}

type option struct{ Value, Label string }

type undeliveredRow struct {
	processor.DeadLetter
	In      intent.Intent
	Channel string
	Age     string
}

var ages = []option{{"", "any age"}, {"1h", "last hour"}, {"24h", "last day"}, {"168h", "last week"}}

// undelivered lists the customer messages that did not go out: dead-lettered
// intents with the reason, filtered by kind, channel and age; and how many
// are still being retried or wait (for a contact, for quiet hours).
func (c *Console) undelivered(_ http.ResponseWriter, s *session) (string, view, error) {
	q := s.r.URL.Query()
	v := undeliveredView{Kind: q.Get("kind"), Channel: q.Get("channel"), Age: q.Get("age"), Ages: ages,
		Kinds: []string{string(intent.Activation), string(intent.LowData), string(intent.ValidityLow)}}
	var maxAge time.Duration
	if v.Age != "" {
		d, err := time.ParseDuration(v.Age)
		if err != nil {
			return "", view{}, badRequest("age: want a duration such as 24h")
		}
		maxAge = d
	}
	letters, err := c.deadLetterList(s, "notify")
	if err != nil {
		return "", view{}, err
	}
	v.Total = len(letters)
	now := c.now()
	logs := map[string][]store.Notification{}
	txOf := map[string]string{}
	channels := map[string]bool{}
	for i := len(letters) - 1; i >= 0 && len(v.Rows) < maxRows; i-- { // newest first
		d := letters[i]
		if maxAge > 0 && now.Sub(d.DeadAt) > maxAge {
			continue
		}
		var full processor.DeadLetter
		if err := c.get(s, "/v1/dlq/"+strconv.FormatUint(d.Seq, 10), &full); err != nil {
			if isNotFound(err) { // re-driven meanwhile
				continue
			}
			return "", view{}, err
		}
		row := undeliveredRow{DeadLetter: d, Age: age(now.Sub(d.DeadAt))}
		_ = json.Unmarshal(full.Body, &row.In)
		if row.In.TransactionID == "" && row.In.ICCID != "" {
			// An intent published before its order was known names no
			// transaction; the profile knows it by now, or no one does.
			tx, ok := txOf[row.In.ICCID]
			if !ok {
				tx = c.transactionOf(s, row.In.ICCID)
				txOf[row.In.ICCID] = tx
			}
			row.In.TransactionID = tx
		}
		// The channel is the one the message was last tried on, from the
		// eSIM's log; none when it never got that far (no contact).
		if row.In.ICCID != "" {
			log, ok := logs[row.In.ICCID]
			if !ok {
				var notes struct {
					Notifications []store.Notification `json:"notifications"`
				}
				if err := c.get(s, "/v1/notifications?iccid="+url.QueryEscape(row.In.ICCID), &notes); err != nil {
					return "", view{}, err
				}
				log, logs[row.In.ICCID] = notes.Notifications, notes.Notifications
			}
			for _, n := range log {
				if n.ID == row.In.ID && n.Channel != "" {
					row.Channel = n.Channel
				}
			}
		}
		if row.Channel != "" {
			channels[row.Channel] = true
		}
		if (v.Kind != "" && string(row.In.Kind) != v.Kind) || (v.Channel != "" && row.Channel != v.Channel) {
			continue
		}
		v.Rows = append(v.Rows, row)
	}
	for ch := range channels {
		v.Channels = append(v.Channels, ch)
	}
	sort.Strings(v.Channels)
	var st statusView
	if err := c.get(s, "/v1/status", &st); err == nil {
		for _, sm := range st.Streams {
			for _, cs := range sm.Consumers {
				if strings.HasSuffix(cs.Name, "notifier") {
					v.Waiting += cs.AckPending
					v.Redelivered += cs.Redelivered
				}
			}
		}
	}
	return "undelivered", view{Title: "Undelivered messages", Nav: "undelivered", Page: &v}, nil
}

// transactionOf is the transactionId of an eSIM's order, "" when unknown.
func (c *Console) transactionOf(s *session, iccid string) string {
	var p store.Profile
	if c.get(s, "/v1/profiles/"+url.PathEscape(iccid)+"?history=0", &p) != nil {
		return ""
	}
	if p.TransactionID == "" && p.OrderNo != "" {
		var o store.Order
		if c.get(s, "/v1/orders/"+url.PathEscape(p.OrderNo), &o) == nil {
			return o.TransactionID
		}
	}
	return p.TransactionID
}

// deadLetterList reads up to maxRows dead letters of source ("" = both),
// oldest first.
func (c *Console) deadLetterList(s *session, source string) ([]processor.DeadLetter, error) {
	var out []processor.DeadLetter
	after := uint64(0)
	for len(out) < maxRows {
		var page struct {
			DeadLetters []processor.DeadLetter `json:"deadLetters"`
			Next        uint64                 `json:"next"`
		}
		path := fmt.Sprintf("/v1/dlq?limit=%d&after=%d", maxRows-len(out), after)
		if source != "" {
			path += "&source=" + url.QueryEscape(source)
		}
		if err := c.get(s, path, &page); err != nil {
			return nil, err
		}
		out = append(out, page.DeadLetters...)
		if page.Next == 0 {
			break
		}
		after = page.Next
	}
	return out, nil
}

// ---- re-drive ----

type resultView struct {
	Heading string
	Lines   []resultLine
	Back    string
	Error   string
}

type resultLine struct {
	OK   bool
	Text string
}

// redrive re-drives every seq in the form, one API call each.
func (c *Console) redrive(_ http.ResponseWriter, s *session) (string, view, error) {
	v := resultView{Heading: "Re-drive", Back: backTo(s.r.PostForm.Get("back"), "/console/undelivered")}
	seqs := s.r.PostForm["seq"]
	if len(seqs) == 0 {
		v.Error = "Nothing selected: tick the messages to re-drive."
	}
	for _, seq := range seqs {
		v.Lines = append(v.Lines, c.redriveOne(s, seq))
	}
	return "result", view{Title: "Re-drive", Nav: "undelivered", Page: &v}, nil
}

func (c *Console) redriveOne(s *session, seq string) resultLine {
	if _, err := strconv.ParseUint(seq, 10, 64); err != nil {
		return resultLine{Text: "dead letter “" + seq + "”: not a sequence number"}
	}
	var res processor.Redriven
	status, body, err := c.call(s, http.MethodPost, "/v1/dlq/"+seq+"/redrive", nil, &res)
	switch {
	case err != nil:
		return resultLine{Text: "dead letter " + seq + ": " + err.Error()}
	case status != http.StatusOK:
		return resultLine{Text: "dead letter " + seq + ": " + apiMessage(body)}
	}
	return resultLine{OK: true, Text: fmt.Sprintf("dead letter %s re-driven to %s (sequence %d)", seq, res.Stream, res.StreamSeq)}
}

// backTo keeps a return link on the console.
func backTo(path, def string) string {
	if strings.HasPrefix(path, "/console/") && !strings.HasPrefix(path, "//") && !strings.ContainsAny(path, "\\\r\n") {
		return path
	}
	return def
}

// ---- contacts ----

type contactView struct {
	TransactionID string
	New           bool
	Name, Email   string
	Phone, Locale string
	Channels      string
	ICCIDs        string
	Redrive       []string // dead letters to re-drive once saved
	Error         string
}

func (c *Console) contactForm(_ http.ResponseWriter, s *session) (string, view, error) {
	tx := s.r.PathValue("transactionId")
	v := contactView{TransactionID: tx, Redrive: s.r.URL.Query()["redrive"]}
	var ct store.Contact
	switch err := c.get(s, "/v1/contacts/"+url.PathEscape(tx), &ct); {
	case err == nil:
		v.Name, v.Email, v.Phone, v.Locale = ct.Name, ct.Email, ct.Phone, ct.Locale
		v.Channels, v.ICCIDs = strings.Join(ct.Channels, ", "), strings.Join(ct.ICCIDs, ", ")
	case isNotFound(err):
		v.New, v.ICCIDs = true, s.r.URL.Query().Get("iccid")
	default:
		return "", view{}, err
	}
	return "contact", view{Title: "Contact " + tx, Nav: "undelivered", Page: &v}, nil
}

// saveContact writes the contact through the API, then re-drives the dead
// letters the form names: the one click that fixes a missing contact.
func (c *Console) saveContact(_ http.ResponseWriter, s *session) (string, view, error) {
	tx := s.r.PathValue("transactionId")
	f := s.r.PostForm
	v := contactView{TransactionID: tx, Name: f.Get("name"), Email: f.Get("email"), Phone: f.Get("phone"), Locale: f.Get("locale"),
		Channels: f.Get("channels"), ICCIDs: f.Get("iccids"), Redrive: f["seq"]}
	body := map[string]any{"name": v.Name, "email": v.Email, "phone": v.Phone, "locale": v.Locale,
		"channels": list(v.Channels), "iccids": list(v.ICCIDs)}
	status, resp, err := c.call(s, http.MethodPut, "/v1/contacts/"+url.PathEscape(tx), body, nil)
	if err != nil {
		return "", view{}, err
	}
	if status != http.StatusOK && status != http.StatusCreated {
		v.Error = apiMessage(resp)
		return "contact", view{Title: "Contact " + tx, Nav: "undelivered", Page: &v}, nil
	}
	r := resultView{Heading: "Contact saved", Back: "/console/undelivered", Lines: []resultLine{{OK: true, Text: "contact " + tx + " saved"}}}
	for _, seq := range v.Redrive {
		r.Lines = append(r.Lines, c.redriveOne(s, seq))
	}
	return "result", view{Title: "Contact saved", Nav: "undelivered", Page: &r}, nil
}

// list splits a comma- or space-separated field.
func list(s string) []string {
	out := []string{}
	for _, f := range strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' || r == '\n' || r == '\r' || r == '\t' }) {
		out = append(out, f)
	}
	return out
}

// ---- dead letters ----

type deadLettersView struct {
	Source string
	Rows   []dlRow
}

type dlRow struct {
	processor.DeadLetter
	Age string
}

func (c *Console) deadLetters(_ http.ResponseWriter, s *session) (string, view, error) {
	source := s.r.URL.Query().Get("source")
	if source != "events" && source != "notify" {
		source = ""
	}
	letters, err := c.deadLetterList(s, source)
	if err != nil {
		return "", view{}, err
	}
	v := deadLettersView{Source: source, Rows: make([]dlRow, 0, len(letters))}
	now := c.now()
	for i := len(letters) - 1; i >= 0; i-- {
		v.Rows = append(v.Rows, dlRow{DeadLetter: letters[i], Age: age(now.Sub(letters[i].DeadAt))})
	}
	return "dlq", view{Title: "Dead letters", Nav: "dlq", Page: &v}, nil
}

type deadLetterView struct {
	D    processor.DeadLetter
	Body string
}

func (c *Console) deadLetter(_ http.ResponseWriter, s *session) (string, view, error) {
	var v deadLetterView
	if err := c.get(s, "/v1/dlq/"+url.PathEscape(s.r.PathValue("seq")), &v.D); err != nil {
		return "", view{}, err
	}
	v.Body = pretty(v.D.Body, v.D.BodyRaw)
	return "deadletter", view{Title: "Dead letter " + strconv.FormatUint(v.D.Seq, 10), Nav: "dlq", Page: &v}, nil
}

type confirmView struct {
	Heading, Text, Action, Button string
	Fields                        []option
	Back                          string
}

func (c *Console) confirmDelete(_ http.ResponseWriter, s *session) (string, view, error) {
	var d processor.DeadLetter
	seq := s.r.PathValue("seq")
	if err := c.get(s, "/v1/dlq/"+url.PathEscape(seq), &d); err != nil {
		return "", view{}, err
	}
	v := confirmView{Heading: "Delete dead letter " + seq + "?", Action: "/console/dlq/" + seq + "/delete", Button: "Delete dead letter " + seq,
		Text: fmt.Sprintf("From %s, dead since %s: %s. It will not be re-driven; the original stays in its stream until the stream's limits remove it.", d.Source, d.DeadAt.Format(time.DateTime), d.Error),
		Back: "/console/dlq"}
	return "confirm", view{Title: "Delete dead letter", Nav: "dlq", Page: &v}, nil
}

func (c *Console) deleteDeadLetter(_ http.ResponseWriter, s *session) (string, view, error) {
	seq := s.r.PathValue("seq")
	v := resultView{Heading: "Delete", Back: "/console/dlq"}
	status, body, err := c.call(s, http.MethodDelete, "/v1/dlq/"+url.PathEscape(seq), nil, nil)
	switch {
	case err != nil:
		return "", view{}, err
	case status == http.StatusOK:
		v.Lines = []resultLine{{OK: true, Text: "dead letter " + seq + " deleted"}}
	default:
		v.Lines = []resultLine{{Text: "dead letter " + seq + ": " + apiMessage(body)}}
	}
	return "result", view{Title: "Delete", Nav: "dlq", Page: &v}, nil
}

func (c *Console) confirmPurge(_ http.ResponseWriter, s *session) (string, view, error) {
	source := s.r.URL.Query().Get("source")
	what := "every dead letter (events and messages)"
	switch source {
	case "events":
		what = "every dead-lettered event"
	case "notify":
		what = "every dead-lettered customer message"
	case "":
	default:
		source = ""
	}
	letters, err := c.deadLetterList(s, source)
	if err != nil {
		return "", view{}, err
	}
	n := strconv.Itoa(len(letters))
	if len(letters) >= maxRows {
		n = "at least " + n
	}
	v := confirmView{Heading: "Purge " + what + "?", Action: "/console/purge", Button: "Purge " + n + " dead letters",
		Text:   "This removes " + n + " dead letters for good: none of them can be re-driven afterwards.",
		Fields: []option{{"source", source}}, Back: "/console/dlq"}
	return "confirm", view{Title: "Purge dead letters", Nav: "dlq", Page: &v}, nil
}

func (c *Console) purge(_ http.ResponseWriter, s *session) (string, view, error) {
	source := s.r.PostForm.Get("source")
	path := "/v1/dlq"
	if source != "" {
		path += "?source=" + url.QueryEscape(source)
	}
	var res struct {
		Purged uint64 `json:"purged"`
	}
	status, body, err := c.call(s, http.MethodDelete, path, nil, &res)
	if err != nil {
		return "", view{}, err
	}
	v := resultView{Heading: "Purge", Back: "/console/dlq"}
	if status == http.StatusOK {
		v.Lines = []resultLine{{OK: true, Text: fmt.Sprintf("%d dead letters purged", res.Purged)}}
	} else {
		v.Lines = []resultLine{{Text: apiMessage(body)}}
	}
	return "result", view{Title: "Purge", Nav: "dlq", Page: &v}, nil
}

// ---- helpers for the pages ----

// pretty indents a JSON body, or shows a raw one as it is.
func pretty(body json.RawMessage, raw string) string {
	if len(body) == 0 {
		return raw
	}
	var b bytes.Buffer
	if json.Indent(&b, body, "", "  ") != nil {
		return string(body)
	}
	return b.String()
}

func age(d time.Duration) string {
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return strconv.Itoa(int(d.Minutes())) + " min ago"
	case d < 48*time.Hour:
		return strconv.Itoa(int(d.Hours())) + " h ago"
	}
	return strconv.Itoa(int(d.Hours()/24)) + " days ago"
}

func bytesize(n int64) string {
	const unit = 1024
	if n < unit {
		return strconv.FormatInt(n, 10) + " B"
	}
	f, i := float64(n), -1
	for f >= unit && i < 4 {
		f /= unit
		i++
	}
	return strconv.FormatFloat(f, 'f', 1, 64) + " " + "KMGTP"[i:i+1] + "B"
}
