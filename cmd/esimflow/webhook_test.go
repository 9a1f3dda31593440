package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/esimflow/esimflow/ingest/verify"
)

func runCLI(t *testing.T, env map[string]string, args ...string) (string, error) {
	t.Helper()
	root := newRoot()
	root.RemoveCommand(root.Commands()...)
	root.AddCommand(newWebhookCmd(func(k string) string { return env[k] }))
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), err
}

// fakeProvider checks what the CLI sends and answers as told.
func fakeProvider(t *testing.T, answers ...func(w http.ResponseWriter)) (*httptest.Server, *atomic.Int32) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := int(calls.Add(1)) - 1
		if r.Method != http.MethodPost || r.URL.Path != "/api/v1/open/webhook/save" {
			t.Errorf("called %s %s", r.Method, r.URL.Path)
		}
		if r.Header.Get("RT-AccessCode") != "ac-1" || r.Header.Get("RT-SecretKey") != "sk-1" || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("headers %v", r.Header)
		}
		var body map[string]string
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil || body["webhook"] != "https://hooks.example/webhooks/esim/tok" || len(body) != 1 {
			t.Errorf("body %v (%v)", body, err)
		}
		answers[min(n, len(answers)-1)](w)
	}))
	t.Cleanup(srv.Close)
	return srv, &calls
}

func answer(status int, body string) func(w http.ResponseWriter) {
	return func(w http.ResponseWriter) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
}

func TestWebhookSet(t *testing.T) {
	ok := answer(200, `{"errorCode":null,"errorMsg":null,"success":true,"obj":null}`)
	t.Run("success with credentials from the environment", func(t *testing.T) {
		srv, _ := fakeProvider(t, ok)
		env := map[string]string{"ESIMFLOW_PROVIDER_API_URL": srv.URL, "ESIMFLOW_PROVIDER_ACCESS_CODE": "ac-1", "ESIMFLOW_PROVIDER_SECRET_KEY": "sk-1"}
		out, err := runCLI(t, env, "webhook", "set", "--url", "https://hooks.example/webhooks/esim/tok")
		if err != nil || !strings.Contains(out, "webhook set") {
			t.Errorf("%v: %s", err, out)
		}
		if strings.Contains(out, "sk-1") || strings.Contains(out, "ac-1") {
			t.Errorf("credentials printed: %s", out)
		}
	})
	t.Run("TestSecurityWebhookSetDoesNotPrintPathToken", func(t *testing.T) {
		srv, _ := fakeProvider(t, ok)
		out, err := runCLI(t, nil, "webhook", "set", "--url", "https://hooks.example/webhooks/esim/tok",
			"--api-base", srv.URL, "--access-code", "ac-1", "--secret-key", "sk-1")
		if err != nil || strings.Contains(out, "/esim/tok") || !strings.Contains(out, "https://hooks.example/webhooks/esim/(hidden)") {
			t.Errorf("%v: %s", err, out)
		}
	})
	t.Run("provider refuses: its code and message shown, non-zero exit", func(t *testing.T) {
		srv, _ := fakeProvider(t, answer(200, `{"errorCode":"000101","errorMsg":"access code invalid","success":false}`))
		_, err := runCLI(t, nil, "webhook", "set", "--url", "https://hooks.example/webhooks/esim/tok",
			"--api-base", srv.URL, "--access-code", "ac-1", "--secret-key", "sk-1")
		if err == nil || !strings.Contains(err.Error(), "000101") || !strings.Contains(err.Error(), "access code invalid") || strings.Contains(err.Error(), "sk-1") {
			t.Errorf("err = %v", err)
		}
	})
	t.Run("5xx retried until success", func(t *testing.T) {
		srv, calls := fakeProvider(t, answer(502, `bad gateway`), answer(503, `{}`), ok)
		_, err := runCLI(t, nil, "webhook", "set", "--url", "https://hooks.example/webhooks/esim/tok",
			"--api-base", srv.URL, "--access-code", "ac-1", "--secret-key", "sk-1")
		if err != nil || calls.Load() != 3 {
			t.Errorf("err %v after %d calls", err, calls.Load())
		}
	})
	t.Run("missing credentials", func(t *testing.T) {
		_, err := runCLI(t, nil, "webhook", "set", "--url", "x", "--api-base", "http://127.0.0.1:1")
		if err == nil || !strings.Contains(err.Error(), "ESIMFLOW_PROVIDER_ACCESS_CODE") {
			t.Errorf("err = %v", err)
		}
	})
}

func TestWebhookTest(t *testing.T) {
	secret := "whsec_" + base64.StdEncoding.EncodeToString([]byte("test-signing-key"))
	sw, err := verify.NewStandardWebhooks([]string{secret}, time.Minute, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	types := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if err := sw.Verify(verify.Request{HTTP: r, Body: body}); err != nil {
			http.Error(w, `{"error":"unauthorized"}`, 401)
			return
		}
		var head struct{ EventType, NotifyType string }
		json.Unmarshal(body, &head)
		types[head.EventType+head.NotifyType]++
		io.WriteString(w, `{"received":true}`)
	}))
	defer srv.Close()

	out, err := runCLI(t, map[string]string{"ESIMFLOW_INGEST_HMAC_SECRETS": secret}, "webhook", "test", "--url", srv.URL)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if strings.Contains(out, "golden") || strings.Contains(out, "\t\t") {
		t.Errorf("a sample without a type:\n%s", out)
	}
	for _, typ := range []string{"ORDER_STATUS", "PROFILE_STATUS", "DATA_USAGE", "ESIM_STATUS", "VALIDITY_USAGE", "CHECK_HEALTH"} {
		if types[typ] == 0 {
			t.Errorf("no %s sample sent; report:\n%s", typ, out)
		}
	}
	if !strings.Contains(out, "200") || !strings.Contains(out, "received") {
		t.Errorf("report:\n%s", out)
	}

	// Unsigned, the same endpoint refuses every sample: the command says so.
	out, err = runCLI(t, nil, "webhook", "test", "--url", srv.URL, "--type", "DATA_USAGE")
	if err == nil || !strings.Contains(out, "401") {
		t.Errorf("unsigned run: %v\n%s", err, out)
	}
}

// TestWebhookTestProvider sends each provider's samples to a running
// all-in-one, signed the provider's way with the same secrets ingest has:
// every one is stored (200); with a wrong secret, every one is refused.
func TestWebhookTestProvider(t *testing.T) {
	secrets := "airalo=a-secret,esimgo=g-key,roamify=r-secret,oneglobal=user:pass"
	sys := startSystem(t, map[string]string{"ESIMFLOW_DATA_DIR": t.TempDir(), "ESIMFLOW_PROVIDER_SECRETS": secrets})
	base := strings.TrimSuffix(sys.Hook, "/esim")
	for _, p := range []string{"airalo", "esimgo", "roamify", "oneglobal"} {
		out, err := runCLI(t, map[string]string{"ESIMFLOW_PROVIDER_SECRETS": secrets}, "webhook", "test", "--provider", p, "--url", base+"/"+p)
		if err != nil || strings.Count(out, " 200 ") < 1 || strings.Contains(out, "401") {
			t.Errorf("%s: %v\n%s", p, err, out)
		}
		out, err = runCLI(t, map[string]string{"ESIMFLOW_PROVIDER_SECRETS": p + "=wrong:secret"}, "webhook", "test", "--provider", p, "--url", base+"/"+p)
		if err == nil || !strings.Contains(out, "401") {
			t.Errorf("%s with a wrong secret: %v\n%s", p, err, out)
		}
	}
	out, err := runCLI(t, nil, "webhook", "test", "--provider", "telna", "--url", base+"/telna")
	if err == nil || !strings.Contains(err.Error(), "signed by AWS") {
		t.Errorf("telna: %v\n%s", err, out)
	}
}

// TestWebhookSetAiralo opts a URL in with Airalo's Partner API (a loopback
// fake): a token from the client credentials, then the opt-in body Airalo
// documents ({"type": "webhook_low_data", "webhook_url": …}) with it.
func TestWebhookSetAiralo(t *testing.T) {
	var optIn map[string]string
	var auth string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v2/token":
			if r.FormValue("client_id") != "cid" || r.FormValue("client_secret") != "csecret" || r.FormValue("grant_type") != "client_credentials" {
				w.WriteHeader(401)
				io.WriteString(w, `{"data":[],"meta":{"message":"bad credentials"}}`)
				return
			}
			io.WriteString(w, `{"data":{"token_type":"Bearer","expires_in":31622400,"access_token":"tok-1"},"meta":{"message":"success"}}`)
		case "/v2/notifications/opt-in":
			auth = r.Header.Get("Authorization")
			json.NewDecoder(r.Body).Decode(&optIn)
			io.WriteString(w, `{"data":{"notification":{"type":"webhook_low_data"}},"meta":{"message":"success"}}`)
		default:
			w.WriteHeader(404)
		}
	}))
	defer srv.Close()
	env := map[string]string{"ESIMFLOW_AIRALO_API_URL": srv.URL, "ESIMFLOW_AIRALO_CLIENT_ID": "cid", "ESIMFLOW_AIRALO_CLIENT_SECRET": "csecret"}
	out, err := runCLI(t, env, "webhook", "set", "--provider", "airalo", "--url", "https://hooks.example/webhooks/airalo/tok")
	if err != nil || !strings.Contains(out, "airalo webhook_low_data set to https://hooks.example/webhooks/airalo/(hidden)") {
		t.Fatalf("%v\n%s", err, out)
	}
	if auth != "Bearer tok-1" || optIn["type"] != "webhook_low_data" || optIn["webhook_url"] != "https://hooks.example/webhooks/airalo/tok" || len(optIn) != 2 {
		t.Errorf("opt-in %v with %q", optIn, auth)
	}
	env["ESIMFLOW_AIRALO_CLIENT_SECRET"] = "wrong"
	if _, err := runCLI(t, env, "webhook", "set", "--provider", "airalo", "--url", "https://hooks.example/webhooks/airalo"); err == nil ||
		!strings.Contains(err.Error(), "bad credentials") || strings.Contains(err.Error(), "wrong") {
		t.Errorf("wrong secret: %v", err)
	}
	if _, err := runCLI(t, nil, "webhook", "set", "--provider", "esimgo", "--url", "https://hooks.example/webhooks/esimgo"); err == nil || !strings.Contains(err.Error(), "by hand") {
		t.Errorf("esimgo: %v", err)
	}
}

// The bare endpoint is printed as it is; a path token, however short, is not.
func TestMaskPathToken(t *testing.T) {
	for in, want := range map[string]string{
		"http://127.0.0.1:8080/webhooks/esim":                  "http://127.0.0.1:8080/webhooks/esim",
		"https://h.example/api/webhooks/esim":                  "https://h.example/api/webhooks/esim",
		"https://h.example/webhooks/esim/tok":                  "https://h.example/webhooks/esim/(hidden)",
		"https://h.example/webhooks/esim/0123456789abcdef0123": "https://h.example/webhooks/esim/0123(hidden)",
		"https://h.example/webhooks/esim/esim":                 "https://h.example/webhooks/esim/(hidden)",
		"https://h.example/webhooks/airalo":                    "https://h.example/webhooks/airalo",
		"https://h.example/webhooks/airalo/tok":                "https://h.example/webhooks/airalo/(hidden)",
	} {
		if got := maskPathToken(in); got != want {
			t.Errorf("maskPathToken(%s) = %s, want %s", in, got, want)
		}
	}
}
