package console

import (
	"encoding/json"
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
