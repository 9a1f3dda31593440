package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// hostile is what a provider event (or a compromised peer) can put in the
// fields the API returns: a newline that starts a forged row, a tab that
// shifts columns, ANSI and OSC sequences, an 8-bit CSI, a bidi override.
const hostile = `8901\nFORGED ROW\tACTIVE\u001b]0;pwned\u0007\u001b[2J\u009b31m\u202e\u007f`

// hostileRaw holds what encoding/json leaves unescaped: DEL, an 8-bit CSI
// and a bidi override, raw in the JSON text.
const hostileRaw = "x\u009b31m\u202e\x7f"

// hostileAPI serves every route the operator commands read with hostile
// values in every string.
func hostileAPI(t *testing.T) string {
	t.Helper()
	routes := map[string]string{
		"/v1/profiles/8901": `{"iccid":"` + hostile + `","status":"` + hostile + `","history":[{"status":"` + hostile + `","` + hostile + `":"x"}],"tags":["` + hostile + `"],"raw":"` + hostileRaw + `"}`,
		"/v1/orders/O1":     `{"orderNo":"` + hostile + `","profiles":["` + hostile + `"]}`,
		"/readyz":           `{"nats":"` + hostile + `"}`,
		"/v1/status":        `{"streams":[{"name":"` + hostile + `","leader":"` + hostile + `","consumers":[{"name":"` + hostile + `"}]},{"name":"X_ESIM_DLQ` + hostile + `"}]}`,
		"/metrics":          "esimflow_webhooks_received_total{outcome=\"a\\nb\"} 1\n",
		"/v1/dlq":           `{"deadLetters":[{"seq":1,"source":"` + hostile + `","originalSubject":"` + hostile + `","error":"` + hostile + `","deadAt":"2026-01-01T00:00:00Z"}],"next":0}`,
		"/v1/dlq/1":         `{"seq":1,"source":"` + hostile + `","error":"` + hostile + `","headers":{"` + hostile + `":["` + hostile + `"]},"bodyRaw":"` + hostileRaw + `","deadAt":"2026-01-01T00:00:00Z"}`,
		"/v1/dlq/2":         `{"error":"` + hostile + `"}`,
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, ok := routes[r.URL.Path]
		switch {
		case r.URL.Path == "/v1/dlq/2":
			w.WriteHeader(http.StatusNotFound)
		case !ok:
			http.NotFound(w, r)
			return
		}
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestSecurityCLIEscapesControlCharactersInTables: every table and print of
// profile, order, status and dlq shows control characters escaped: no
// forged line, no escape sequence reaches the terminal.
func TestSecurityCLIEscapesControlCharactersInTables(t *testing.T) {
	api := hostileAPI(t)
	env := map[string]string{"ESIMFLOW_API_URL": api}
	getenv := func(k string) string { return env[k] }
	for _, args := range [][]string{
		{"profile", "8901"}, {"profile", "8901", "--json"},
		{"order", "O1"},
		{"status"}, {"status", "--json"},
		{"dlq", "list"}, {"dlq", "show", "1"}, {"dlq", "show", "2"},
	} {
		t.Run(strings.Join(args, " "), func(t *testing.T) {
			root := newRoot()
			root.RemoveCommand(root.Commands()...)
			root.AddCommand(newStatusCmd(getenv), newOrderCmd(getenv), newProfileCmd(getenv), newDLQCmd(getenv))
			var out bytes.Buffer
			root.SetOut(&out)
			root.SetErr(&out)
			root.SetArgs(args)
			err := root.ExecuteContext(context.Background())
			got := out.String()
			if err != nil {
				got += err.Error()
			}
			if i := strings.IndexAny(got, "\x1b\x07\x7f\u009b\u202e\r"); i >= 0 {
				t.Errorf("raw control character at %d in:\n%s", i, got)
			}
			for _, line := range strings.Split(got, "\n") {
				if strings.HasPrefix(strings.TrimSpace(line), "FORGED") {
					t.Errorf("a forged line: %q in\n%s", line, got)
				}
			}
		})
	}
}

// TestSecurityNotifyPreviewEscapesControlCharacters: the rendered preview
// keeps its lines but shows escapes.
func TestSecurityNotifyPreviewEscapesControlCharacters(t *testing.T) {
	root := newRoot()
	root.RemoveCommand(root.Commands()...)
	root.AddCommand(newNotifyCmd())
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetArgs([]string{"notify", "preview", "--kind", "activation", "--name", "Ana\x1b]0;pwned\x07\nFORGED", "--iccid", "89\x1b[2J01"})
	if err := root.ExecuteContext(context.Background()); err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(out.String(), "\x1b\x07") {
		t.Errorf("raw escapes in:\n%s", out.String())
	}
}

// TestSecurityCLISendsCrossSiteGuardHeader: the CLI's requests carry
// X-Esimflow-Request, which the API requires of state-changing requests
// (a cross-site form cannot send it), so purge and re-drive keep working.
func TestSecurityCLISendsCrossSiteGuardHeader(t *testing.T) {
	var missing []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Esimflow-Request") != "1" {
			missing = append(missing, r.Method+" "+r.URL.Path)
		}
		switch r.Method {
		case http.MethodPost:
			_, _ = w.Write([]byte(`{"stream":"ESIM_EVENTS","streamSeq":9}`))
		default:
			_, _ = w.Write([]byte(`{"purged":1}`))
		}
	}))
	t.Cleanup(srv.Close)
	env := map[string]string{"ESIMFLOW_API_URL": srv.URL}
	for _, args := range [][]string{{"dlq", "purge", "1", "--yes"}, {"dlq", "purge", "--yes"}, {"dlq", "redrive", "1"}} {
		if _, _, err := run(t, env, "", args...); err != nil {
			t.Errorf("%v: %v", args, err)
		}
	}
	if len(missing) > 0 {
		t.Errorf("requests without the header: %v", missing)
	}
}
