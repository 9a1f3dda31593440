package notifier_test

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/esimflow/esimflow/shared/store"
)

func call(t *testing.T, method, url, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if len(b) > 0 {
		if err := json.Unmarshal(b, &out); err != nil {
			t.Fatalf("%s %s: %s is not JSON", method, url, b)
		}
	}
	return resp.StatusCode, out
}

func TestContactsAPI(t *testing.T) {
	t.Parallel()
	r := start(t, options{})
	base := r.api.URL + "/v1/contacts/"
	steps := []struct {
		name, method, path, body string
		status                   int
		want                     map[string]any // fields the answer must have
	}{
		{"unknown contact", "GET", "tx1", "", 404, map[string]any{"error": "no such contact"}},
		{"register", "PUT", "tx1", `{"name":"Ana Lima","email":"ana@example.com","phone":"+351912345678","locale":"pt-BR","channels":["sms","email"],"iccids":["8901234567890123456"]}`,
			201, map[string]any{"transactionId": "tx1", "email": "ana@example.com", "locale": "pt-BR"}},
		{"read back", "GET", "tx1", "", 200, map[string]any{"name": "Ana Lima", "phone": "+351912345678"}},
		{"by iccid", "GET", "?iccid=8901234567890123456", "", 200, map[string]any{"transactionId": "tx1"}},
		{"by email, any case", "GET", "?email=ANA@example.com", "", 200, map[string]any{"transactionId": "tx1"}},
		{"by phone", "GET", "?phone=%2B351912345678", "", 200, map[string]any{"transactionId": "tx1"}},
		{"one address at a time", "GET", "?phone=%2B351912345678&email=ana@example.com", "", 400, nil},
		{"replace", "PUT", "tx1", `{"transactionId":"tx1","email":"ana@example.org"}`, 200, map[string]any{"email": "ana@example.org"}},
		{"replaced fields are gone", "GET", "tx1", "", 200, map[string]any{"phone": nil, "iccids": nil}},
		{"iccid no longer listed", "GET", "?iccid=8901234567890123456", "", 404, nil},
		{"old email gone", "GET", "?email=ana@example.com", "", 404, nil},
		{"new email found", "GET", "?email=ana@example.org", "", 200, map[string]any{"transactionId": "tx1"}},
		{"by iccid needs one", "GET", "?iccid=", "", 400, nil},
		{"preferences", "PUT", "tx2", `{"phone":"+819012345678","timeZone":"Asia/Tokyo","channels":["whatsapp","sms"],"optOut":["low_data","topped_up"]}`,
			201, map[string]any{"timeZone": "Asia/Tokyo"}},
		{"delete", "DELETE", "tx1", "", 204, nil},
		{"deleted", "GET", "tx1", "", 404, nil},
		{"delete again", "DELETE", "tx1", "", 404, nil},
	}
	for _, s := range steps {
		url := base + s.path
		if strings.HasPrefix(s.path, "?") {
			url = strings.TrimSuffix(base, "/") + s.path
		}
		status, body := call(t, s.method, url, s.body)
		if status != s.status {
			t.Fatalf("%s: %s %s = %d %v, want %d", s.name, s.method, s.path, status, body, s.status)
		}
		for k, v := range s.want {
			if body[k] != v {
				t.Errorf("%s: %s = %v, want %v (in %v)", s.name, k, body[k], v, body)
			}
		}
	}
}

func TestContactValidation(t *testing.T) {
	t.Parallel()
	r := start(t, options{})
	tests := []struct {
		name, body, want string
	}{
		{"not JSON", `{"email":`, "want a JSON contact"},
		{"unknown field", `{"email":"a@example.com","mail":"x"}`, `unknown field "mail"`},
		{"two objects", `{"email":"a@example.com"} {}`, "one JSON object"},
		{"no address", `{"name":"Ana"}`, "needs an email or a phone"},
		{"email with a display name", `{"email":"Ana <a@example.com>"}`, "bare address"},
		{"not an email", `{"email":"ana"}`, `email "ana"`},
		{"phone not E.164", `{"phone":"0912 345 678"}`, "E.164"},
		{"locale", `{"email":"a@example.com","locale":"portuguese!"}`, "locale"},
		{"unknown channel", `{"email":"a@example.com","channels":["fax"]}`, `"fax"`},
		{"sms without phone", `{"email":"a@example.com","channels":["sms"]}`, "sms needs a phone"},
		{"duplicate channel", `{"email":"a@example.com","channels":["email","email"]}`, "twice"},
		{"whatsapp without phone", `{"email":"a@example.com","channels":["whatsapp"]}`, "whatsapp needs a phone"},
		{"unknown time zone", `{"phone":"+819012345678","timeZone":"Asia/Atlantis"}`, "IANA time zone"},
		{"unknown kind to opt out of", `{"phone":"+819012345678","optOut":["spam"]}`, `optOut: "spam"`},
		{"bad iccid", `{"email":"a@example.com","iccids":["89-01"]}`, "not an iccid"},
		{"transactionId differs", `{"transactionId":"tx2","email":"a@example.com"}`, "differs"},
		{"name with a newline", `{"email":"a@example.com","name":"Ana\nLima"}`, "name"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := call(t, "PUT", r.api.URL+"/v1/contacts/tx1", tt.body)
			msg, _ := body["error"].(string)
			if status != http.StatusBadRequest || !strings.Contains(msg, tt.want) {
				t.Errorf("= %d %q, want 400 naming %q", status, msg, tt.want)
			}
		})
	}
	t.Run("webhook-only contact needs no address", func(t *testing.T) {
		if status, body := call(t, "PUT", r.api.URL+"/v1/contacts/tx9", `{"name":"Bo","locale":"de","channels":["webhook"]}`); status != 201 {
			t.Errorf("= %d %v", status, body)
		}
	})
	t.Run("too large", func(t *testing.T) {
		status, _ := call(t, "PUT", r.api.URL+"/v1/contacts/tx1", `{"name":"`+strings.Repeat("x", 70<<10)+`"}`)
		if status != http.StatusRequestEntityTooLarge {
			t.Errorf("= %d, want 413", status)
		}
	})
	if _, err := r.store.Contact(t.Context(), "tx1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a refused contact was stored: %v", err)
	}
}
