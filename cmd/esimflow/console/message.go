package console

import (
	"net/http"
	"net/url"
)

// preview is the notifier's GET /v1/notifications/{id}/preview answer.
type preview struct {
	ID        string   `json:"id"`
	Kind      string   `json:"kind"`
	ICCID     string   `json:"iccid"`
	Threshold int      `json:"threshold"`
	Locale    string   `json:"locale"`
	Channels  []string `json:"channels"`
	To        struct {
		Name, Email, Phone string
	} `json:"to"`
	TransactionID string `json:"transactionId"`
	Subject       string `json:"subject"`
	Text          string `json:"text"`
	HTML          string `json:"html"`
	SMS           string `json:"sms"`
}

// message shows one message's text on demand: rendered now by the notifier,
// with the current contact and templates.
func (c *Console) message(_ http.ResponseWriter, s *session) (string, view, error) {
	id, iccid := s.r.PathValue("id"), s.r.URL.Query().Get("iccid")
	if iccid == "" {
		return "", view{}, badRequest("iccid: which eSIM's message?")
	}
	var p preview
	if err := c.get(s, "/v1/notifications/"+url.PathEscape(id)+"/preview?iccid="+url.QueryEscape(iccid), &p); err != nil {
		return "", view{}, err
	}
	return "message", view{Title: "Message " + id, Nav: "search", Page: &p}, nil
}
