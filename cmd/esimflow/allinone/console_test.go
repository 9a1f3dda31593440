package allinone_test

import (
	"io"
	"net/http"
	"strings"
	"testing"
)

// TestConsoleServed: `make run`'s defaults (no token, loopback) serve the
// console on the internal API's listener, open and saying so; with a token
// it asks for it first.
func TestConsoleServed(t *testing.T) {
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for _, tc := range []struct {
		name, token string
		want        int
		body        string
	}{
		{"no token", "", 200, "No admin token is configured"},
		{"with a token", "t0ken", http.StatusSeeOther, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sys := start(t, map[string]string{"ESIMFLOW_DATA_DIR": t.TempDir(), "ESIMFLOW_ADMIN_TOKEN": tc.token})
			resp, err := noRedirect.Get(sys.API + "/console/undelivered")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tc.want || !strings.Contains(string(body), tc.body) {
				t.Fatalf("GET /console/undelivered: %d %s", resp.StatusCode, body)
			}
			if tc.want == http.StatusSeeOther && !strings.HasPrefix(resp.Header.Get("Location"), "/console/login") {
				t.Errorf("redirected to %q, want the login", resp.Header.Get("Location"))
			}
		})
	}
}
