package console

import (
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/esimflow/esimflow/processor"
	"github.com/esimflow/esimflow/shared/provider"
	"github.com/esimflow/esimflow/shared/store"
	"github.com/esimflow/esimflow/shared/stream"
	"github.com/nats-io/nats.go"
)

type esimView struct {
	P           store.Profile
	Order       *store.Order
	Contact     *store.Contact
	Timeline    []entry
	Used, Total string
	Percent     float64
	Events      int // state changes and usage reports shown
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
	// The event behind a state change or usage report, where the state
	// records it (store.Stored): its stream sequence (a link to the raw
	// body), dedupe key, arrival, and the further copies stored of it.
	Seq        uint64
	Key        string
	Received   time.Time
	Duplicates int
	// Text links a message to its rendered text.
	Text string
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
	v.Events, v.Messages = len(v.P.History)+len(v.P.Usage), len(notes.Notifications)
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

// timeline merges the profile's and order's status changes and the
// profile's usage reports with the messages, oldest first. Within one instant a state change comes before the
// message it caused. Identical consecutive lines fold into one with a count
// (a provider's retries, a message retried with the same error).
func timeline(p store.Profile, o *store.Order, notes []store.Notification) []entry {
	out := make([]entry, 0, len(p.History)+len(p.Usage)+len(notes)+4)
	for i := len(p.History) - 1; i >= 0; i-- {
		t := p.History[i]
		d := ""
		if t.PreviousStatus != "" {
			d = "from " + t.PreviousStatus
		}
		if t.SmdpStatus != "" {
			d = strings.TrimSpace(d + " · SM-DP+ " + t.SmdpStatus)
		}
		out = append(out, entry{At: t.At, Kind: "state", Title: "eSIM " + t.Status, Detail: d, Count: 1,
			Seq: t.Seq, Key: t.DedupeKey, Received: t.ReceivedAt, Duplicates: t.Duplicates()})
	}
	for _, u := range p.Usage { // oldest first
		d := ""
		if u.Total > 0 {
			d = bytesize(u.Used) + " of " + bytesize(u.Total)
		}
		if u.BundleID != "" {
			d = strings.TrimSpace(d + " · bundle " + u.BundleID)
		}
		out = append(out, entry{At: u.At, Kind: "usage", Title: "Data used " + num(u.Percent) + " %", Detail: d, Count: 1,
			Seq: u.Seq, Key: u.DedupeKey, Received: u.ReceivedAt, Duplicates: u.Duplicates()})
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
		out = append(out, entry{At: n.SentAt, Kind: "message", Title: title, Detail: d, Status: n.Status, Tone: tone(n.Status), Error: n.Error, Count: 1,
			Text: "/console/messages/" + url.PathEscape(n.ID) + "?iccid=" + url.QueryEscape(n.ICCID)})
	}
	rank := map[string]int{"order": 0, "state": 1, "usage": 1, "message": 2}
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
			// Events with a stream sequence each keep theirs (and its link).
			if last.Kind == e.Kind && last.Title == e.Title && last.Detail == e.Detail && last.Status == e.Status && last.Error == e.Error && last.Seq == e.Seq && last.Key == e.Key {
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

type eventView struct {
	E    processor.StoredEvent
	Body string
	// Provider and Adapter read it (an event stored without them came to
	// the default endpoint); Source says whether a webhook or the
	// reconciler's poll brought it; Key is its dedupe key.
	Provider, Adapter, Source, Key string
}

func (c *Console) event(_ http.ResponseWriter, s *session) (string, view, error) {
	var v eventView
	if err := c.get(s, "/v1/events/"+url.PathEscape(s.r.PathValue("seq")), &v.E); err != nil {
		return "", view{}, err
	}
	v.Body = pretty(v.E.Body, v.E.BodyRaw)
	h := nats.Header(v.E.Headers)
	v.Provider, v.Adapter, v.Key = h.Get(stream.HeaderProvider), h.Get(stream.HeaderAdapter), stream.DedupeKey(h)
	if v.Source = h.Get(stream.HeaderSource); v.Source == "" {
		v.Source = "webhook"
	}
	if v.Provider == "" {
		v.Provider = provider.Default + " (default endpoint)"
	}
	return "event", view{Title: "Event " + strconv.FormatUint(v.E.Seq, 10), Nav: "dlq", Page: &v}, nil
}
