package console

import (
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/esimflow/esimflow/processor"
)

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
