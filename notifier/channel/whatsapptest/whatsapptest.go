// Package whatsapptest runs a loopback stand-in for the WhatsApp Business
// Cloud API's messages endpoint, the way httptest serves HTTP: it checks
// what a template message must carry (bearer token, product, recipient,
// template name, language, the kind's named parameters), records what it
// accepts per intent id (biz_opaque_callback_data), and answers what a test
// scripts per recipient — an error status and code, or a delay past the
// client's timeout.
package whatsapptest

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/esimflow/esimflow/notifier/channel"
)

// PhoneNumberID and Token are what the server expects in the path and the
// Authorization header.
const (
	PhoneNumberID = "106540352242922"
	Token         = "EAAtest"
)

// Reply is one scripted answer: an HTTP status with an API error code, or
// a delay before the server answers (success after it, unless Status is set).
type Reply struct {
	Status int
	Code   int
	Delay  time.Duration
}

// Message is one accepted template message.
type Message struct {
	To       string
	Template string
	Language string
	Params   map[string]string
}

// Server is the fake API.
type Server struct {
	*httptest.Server
	t      testing.TB
	mu     sync.Mutex
	script map[string][]Reply
	tries  map[string]int
	sent   map[string][]Message
}

var digits = regexp.MustCompile(`^[1-9][0-9]{6,14}$`)

// Start serves until the test ends. script lists, per recipient (digits,
// as the request's "to"), the replies before the server accepts.
func Start(t testing.TB, script map[string][]Reply) *Server {
	s := &Server{t: t, script: script, tries: map[string]int{}, sent: map[string][]Message{}}
	if s.script == nil {
		s.script = map[string][]Reply{}
	}
	s.Server = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.Close)
	return s
}

// Options are channel options that reach this server.
func (s *Server) Options() channel.WhatsAppOptions {
	return channel.WhatsAppOptions{BaseURL: s.URL + "/v21.0", PhoneNumberID: PhoneNumberID, Token: Token}
}

// Script adds replies for a recipient.
func (s *Server) Script(to string, replies ...Reply) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.script[to] = append(s.script[to], replies...)
}

// Sent returns the messages accepted for an intent id.
func (s *Server) Sent(id string) []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.sent[id]...)
}

// Tries counts the requests for an intent id.
func (s *Server) Tries(id string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tries[id]
}

// All counts every accepted message per intent id.
func (s *Server) All() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for id, ms := range s.sent {
		out[id] = len(ms)
	}
	return out
}

func (s *Server) fail(w http.ResponseWriter, status, code int, format string, args ...any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"message": fmt.Sprintf(format, args...),
		"type": "OAuthException", "code": code, "fbtrace_id": "AbCdEf"}})
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost || r.URL.Path != "/v21.0/"+PhoneNumberID+"/messages" {
		s.fail(w, http.StatusNotFound, 100, "unknown path %s %s", r.Method, r.URL.Path)
		return
	}
	if r.Header.Get("Authorization") != "Bearer "+Token {
		s.fail(w, http.StatusUnauthorized, 190, "invalid OAuth access token")
		return
	}
	var m channel.WhatsAppMessage
	if err := json.NewDecoder(r.Body).Decode(&m); err != nil {
		s.fail(w, http.StatusBadRequest, 100, "invalid JSON: %v", err)
		return
	}
	if problem := check(m); problem != "" {
		s.t.Errorf("whatsapptest: %s in %+v", problem, m)
		s.fail(w, http.StatusBadRequest, 132000, "%s", problem)
		return
	}
	s.mu.Lock()
	s.tries[m.BizOpaqueCallbackData]++
	var reply Reply
	if rs := s.script[m.To]; len(rs) > 0 {
		reply, s.script[m.To] = rs[0], rs[1:]
	}
	s.mu.Unlock()
	if reply.Delay > 0 {
		select {
		case <-time.After(reply.Delay):
		case <-r.Context().Done():
			return
		}
	}
	if reply.Status != 0 {
		s.fail(w, reply.Status, reply.Code, "scripted")
		return
	}
	params := map[string]string{}
	for _, p := range m.Template.Components[0].Parameters {
		params[p.ParameterName] = p.Text
	}
	s.mu.Lock()
	s.sent[m.BizOpaqueCallbackData] = append(s.sent[m.BizOpaqueCallbackData], Message{To: m.To, Template: m.Template.Name,
		Language: m.Template.Language.Code, Params: params})
	n := len(s.sent[m.BizOpaqueCallbackData])
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_, _ = fmt.Fprintf(w, `{"messaging_product":"whatsapp","contacts":[{"input":%q,"wa_id":%q}],"messages":[{"id":"wamid.%s.%d"}]}`,
		m.To, m.To, strings.NewReplacer(":", "", "/", "").Replace(m.BizOpaqueCallbackData), n)
}

// check says what is wrong with a template message, "" when nothing is.
func check(m channel.WhatsAppMessage) string {
	kind, ok := strings.CutPrefix(m.Template.Name, "esimflow_")
	want, known := channel.WhatsAppParams[kind]
	switch {
	case m.MessagingProduct != "whatsapp" || m.Type != "template" || m.RecipientType != "individual":
		return "not an individual whatsapp template message"
	case !digits.MatchString(m.To):
		return fmt.Sprintf("recipient %q is not a phone number's digits", m.To)
	case !ok || !known:
		return fmt.Sprintf("template %q is not approved", m.Template.Name)
	case !regexp.MustCompile(`^[a-z]{2,3}(_[A-Z]{2})?$`).MatchString(m.Template.Language.Code):
		return fmt.Sprintf("language %q", m.Template.Language.Code)
	case m.BizOpaqueCallbackData == "":
		return "no intent id"
	case len(m.Template.Components) != 1 || m.Template.Components[0].Type != "body" || len(m.Template.Components[0].Parameters) != len(want):
		return fmt.Sprintf("want one body with parameters %v", want)
	}
	for i, p := range m.Template.Components[0].Parameters {
		if p.Type != "text" || p.ParameterName != want[i] || strings.TrimSpace(p.Text) == "" {
			return fmt.Sprintf("parameter %d: %+v, want a text %q", i, p, want[i])
		}
	}
	return ""
}
