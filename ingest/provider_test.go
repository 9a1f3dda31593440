package ingest_test

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"hash"
	"io"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/esimflow/esimflow/shared/event"
	"github.com/esimflow/esimflow/shared/natstest"
	"github.com/esimflow/esimflow/shared/provider"
	"github.com/esimflow/esimflow/shared/stream"
)

// stored counts the messages in the fixture's ESIM_EVENTS.
func stored(t *testing.T, f fixture) uint64 {
	t.Helper()
	s, err := f.js.Stream(context.Background(), f.names.Stream(stream.Events))
	if err != nil {
		t.Fatal(err)
	}
	i, err := s.Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return i.State.Msgs
}

func send(t *testing.T, method, url, body string, hdr map[string]string) int {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

func mac(h func() hash.Hash, key, body string) []byte {
	m := hmac.New(h, []byte(key))
	m.Write([]byte(body))
	return m.Sum(nil)
}

// TestProviderSignatures: each provider's own scheme, through ingest on a
// real JetStream: a valid signature is stored (200); a wrong key, a wrong
// encoding, a modified body or no signature is 401 and stores nothing.
func TestProviderSignatures(t *testing.T) {
	const (
		airaloKey  = "airalo-client-secret"
		esimgoKey  = "esimgo-api-key"
		roamifyKey = "roamify-secret"
	)
	f := start(t, natstest.Start(t), map[string]string{
		"ESIMFLOW_PROVIDER_SECRETS": "airalo=" + airaloKey + ",esimgo=" + esimgoKey + ",roamify=" + roamifyKey + ",oneglobal=reseller:pa55",
	})
	airalo := `{"level": "90%", "remaining_percentage": 10, "iccid": "8912000000000000001"}`
	airaloCompact := `{"level":"90%","remaining_percentage":10,"iccid":"8912000000000000001"}`
	esimgo := `{"alertType":"FirstAttachment","iccid":"8912000000000000002"}`
	roamify := `{"event_category":"esim","event_type":"status","timestamp":1700000000,"iccid":"8912000000000000003","esim_id":"e-3","status":"ACTIVATED"}`
	oneglobal := `{"id":"og-1","type":"USAGE_THRESHOLD","iccid":"8912000000000000004","subscription_id":"s-4","threshold":80,"current_balance":1000}`
	basic := func(user, pass string) string {
		return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+pass))
	}
	tests := []struct {
		name, provider, body string
		hdr                  map[string]string
		want                 int
		events               uint64 // stored on 200
	}{
		{"airalo hex sha512 of the raw body", "airalo", airalo, map[string]string{"airalo-signature": hex.EncodeToString(mac(sha512.New, airaloKey, airalo))}, 200, 1},
		{"airalo signed compact", "airalo", airalo, map[string]string{"airalo-signature": hex.EncodeToString(mac(sha512.New, airaloKey, airaloCompact))}, 200, 1},
		{"airalo wrong key", "airalo", airalo, map[string]string{"airalo-signature": hex.EncodeToString(mac(sha512.New, "other", airalo))}, 401, 0},
		{"airalo wrong encoding", "airalo", airalo, map[string]string{"airalo-signature": base64.StdEncoding.EncodeToString(mac(sha512.New, airaloKey, airalo))}, 401, 0},
		{"airalo wrong algorithm", "airalo", airalo, map[string]string{"airalo-signature": hex.EncodeToString(mac(sha256.New, airaloKey, airalo))}, 401, 0},
		{"airalo modified body", "airalo", strings.Replace(airalo, "90%", "75%", 1), map[string]string{"airalo-signature": hex.EncodeToString(mac(sha512.New, airaloKey, airalo))}, 401, 0},
		{"airalo no header", "airalo", airalo, nil, 401, 0},
		{"esimgo hex", "esimgo", esimgo, map[string]string{"X-Signature-SHA256": hex.EncodeToString(mac(sha256.New, esimgoKey, esimgo))}, 200, 1},
		{"esimgo base64", "esimgo", esimgo, map[string]string{"X-Signature-SHA256": base64.StdEncoding.EncodeToString(mac(sha256.New, esimgoKey, esimgo))}, 200, 1},
		{"esimgo wrong key", "esimgo", esimgo, map[string]string{"X-Signature-SHA256": hex.EncodeToString(mac(sha256.New, "other", esimgo))}, 401, 0},
		{"esimgo wrong encoding", "esimgo", esimgo, map[string]string{"X-Signature-SHA256": base64.URLEncoding.EncodeToString(mac(sha256.New, esimgoKey, esimgo))[:40]}, 401, 0},
		{"esimgo modified body", "esimgo", strings.Replace(esimgo, "0002", "0009", 1), map[string]string{"X-Signature-SHA256": hex.EncodeToString(mac(sha256.New, esimgoKey, esimgo))}, 401, 0},
		{"esimgo no header", "esimgo", esimgo, nil, 401, 0},
		{"roamify hex", "roamify", roamify, map[string]string{"X-Roamify-Signature": hex.EncodeToString(mac(sha256.New, roamifyKey, roamify))}, 200, 1},
		{"roamify wrong key", "roamify", roamify, map[string]string{"X-Roamify-Signature": hex.EncodeToString(mac(sha256.New, "other", roamify))}, 401, 0},
		{"roamify wrong encoding", "roamify", roamify, map[string]string{"X-Roamify-Signature": base64.StdEncoding.EncodeToString(mac(sha256.New, roamifyKey, roamify))}, 401, 0},
		{"roamify modified body", "roamify", strings.Replace(roamify, "ACTIVATED", "REVOKED", 1), map[string]string{"X-Roamify-Signature": hex.EncodeToString(mac(sha256.New, roamifyKey, roamify))}, 401, 0},
		{"roamify no header", "roamify", roamify, nil, 401, 0},
		{"oneglobal basic auth", "oneglobal", oneglobal, map[string]string{"Authorization": basic("reseller", "pa55")}, 200, 1},
		{"oneglobal wrong password", "oneglobal", oneglobal, map[string]string{"Authorization": basic("reseller", "nope")}, 401, 0},
		{"oneglobal wrong encoding", "oneglobal", oneglobal, map[string]string{"Authorization": "Basic reseller:pa55"}, 401, 0},
		{"oneglobal no header", "oneglobal", oneglobal, nil, 401, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := stored(t, f)
			if got := send(t, http.MethodPost, f.url+"/webhooks/"+tt.provider, tt.body, tt.hdr); got != tt.want {
				t.Fatalf("status %d, want %d", got, tt.want)
			}
			// These samples carry no time and no id: a repeat is stored
			// again (docs/design.md, "Dedupe keys").
			if got := stored(t, f) - before; got != tt.events {
				t.Errorf("%d messages stored, want %d", got, tt.events)
			}
		})
	}
	t.Run("stored with the provider's headers", func(t *testing.T) {
		m := lastMsg(t, f, stream.Events, f.names.EventSubject(event.DataUsage))
		if m.Header.Get(stream.HeaderProvider) != "oneglobal" || m.Header.Get(stream.HeaderAdapter) != "1" || string(m.Data) != oneglobal {
			t.Errorf("stored %s with headers %v", m.Data, m.Header)
		}
		reg, _ := provider.Load("", provider.Options{})
		ev, err := reg.DecodeStored(event.Decoder{}, m.Header, m.Data)
		if err != nil || ev.ICCID != "8912000000000000004" || ev.UsagePercent != 80 || ev.Provider != "oneglobal" {
			t.Errorf("decoded %+v, %v", ev, err)
		}
	})
}

// TestProviderEndpoints: unknown providers are 404; a provider's HEAD probe
// (Airalo) is 200, a HEAD to a provider that sends none 405; the default provider's name is /webhooks/esim, with its
// CHECK_HEALTH answered and not stored; a body of several canonical events
// is one message per event, each with its index.
func TestProviderEndpoints(t *testing.T) {
	f := start(t, natstest.Start(t), map[string]string{})
	if got := send(t, http.MethodHead, f.url+"/webhooks/airalo", "", nil); got != 200 {
		t.Errorf("HEAD /webhooks/airalo: %d", got)
	}
	if got := send(t, http.MethodHead, f.url+"/webhooks/esimaccess", "", nil); got != 200 {
		t.Errorf("HEAD /webhooks/esimaccess: %d", got)
	}
	if got := send(t, http.MethodHead, f.url+"/webhooks/esimgo", "", nil); got != 405 {
		t.Errorf("HEAD /webhooks/esimgo (no probe): %d, want 405", got)
	}
	if got := send(t, http.MethodHead, f.url+"/webhooks/nope", "", nil); got != 404 {
		t.Errorf("HEAD /webhooks/nope: %d", got)
	}
	if got := send(t, http.MethodPost, f.url+"/webhooks/nope", `{}`, nil); got != 404 {
		t.Errorf("POST /webhooks/nope: %d", got)
	}
	before := stored(t, f)
	health := `{"notifyType":"CHECK_HEALTH","notifyId":"h1","eventGenerateTime":"2026-04-22T11:31:33Z","content":{"orderNo":"1","orderStatus":"Test"}}`
	if got := send(t, http.MethodPost, f.url+"/webhooks/esimaccess", health, nil); got != 200 {
		t.Errorf("CHECK_HEALTH: %d", got)
	}
	if stored(t, f) != before {
		t.Errorf("CHECK_HEALTH stored")
	}
	low := `{"level":"1days","package_name":"p","remaining_percentage":5,"iccid":"8912000000000000010"}`
	if got := send(t, http.MethodPost, f.url+"/webhooks/airalo", low, nil); got != 200 {
		t.Fatalf("airalo low data: %d", got)
	}
	if got := stored(t, f) - before; got != 2 {
		t.Fatalf("%d messages, want 2 (usage and validity)", got)
	}
	m := lastMsg(t, f, stream.Events, f.names.EventSubject(event.ValidityUsage))
	if m.Header.Get(stream.HeaderEventIndex) != "1" || m.Header.Get(stream.HeaderProvider) != "airalo" {
		t.Errorf("validity stored with headers %v", m.Header)
	}
}

// TestMappingFileProvider: a provider added with a file alone
// (ESIMFLOW_PROVIDERS_DIR) is mounted, verified its way and stored; its
// stored events read back by the same file.
func TestMappingFileProvider(t *testing.T) {
	dir := t.TempDir()
	file := `provider: acme
version: "3"
signature: {scheme: hmac, algorithm: sha256, header: X-Acme-Sig, encoding: base64, prefix: "sha256=", signed: raw}
statuses: {LIVE: ACTIVATED}
events:
  - name: usage
    when: [{path: kind, equals: usage}]
    type: DATA_USAGE
    fields:
      notifyId: id
      iccid: sim.iccid
      usedVolume: {path: used_mb, unit: MiB}
      totalVolume: {path: total_gb, unit: GiB}
      timestamp: {path: at, time: unix_ms}
  - name: state
    when: [{path: kind, equals: state}]
    type: ESIM_STATUS
    fields:
      iccid: sim.iccid
      status: state
`
	if err := os.WriteFile(filepath.Join(dir, "acme.yaml"), []byte(file), 0o600); err != nil {
		t.Fatal(err)
	}
	f := start(t, natstest.Start(t), map[string]string{"ESIMFLOW_PROVIDERS_DIR": dir, "ESIMFLOW_PROVIDER_SECRETS": "acme=k"})
	body := `{"id":"u-1","kind":"usage","sim":{"iccid":"8912000000000000020"},"used_mb":512,"total_gb":1,"at":1760000000000}`
	sig := "sha256=" + base64.StdEncoding.EncodeToString(mac(sha256.New, "k", body))
	if got := send(t, http.MethodPost, f.url+"/webhooks/acme", body, map[string]string{"X-Acme-Sig": sig}); got != 200 {
		t.Fatalf("status %d", got)
	}
	if got := send(t, http.MethodPost, f.url+"/webhooks/acme", body, nil); got != 401 {
		t.Errorf("unsigned: %d, want 401", got)
	}
	m := lastMsg(t, f, stream.Events, f.names.EventSubject(event.DataUsage))
	reg, err := provider.Load(dir, provider.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ev, err := reg.DecodeStored(event.Decoder{}, m.Header, m.Data)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Provider != "acme" || ev.Adapter != "3" || ev.NotifyID != "u-1" || ev.UsedVolume != 512<<20 || ev.TotalVolume != 1<<30 ||
		ev.UsagePercent != 50 || !ev.Timestamp.Equal(time.UnixMilli(1760000000000)) {
		t.Errorf("decoded %+v", ev)
	}
}

// snsFake is a loopback SNS: its own RSA key and certificate, served over
// TLS, and a SubscribeURL that counts its visits.
type snsFake struct {
	srv      *httptest.Server
	key      *rsa.PrivateKey
	confirms atomic.Int32
}

func newSNSFake(t *testing.T) *snsFake {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sns test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	fake := &snsFake{key: key}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /cert.pem", func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write(certPEM) })
	mux.HandleFunc("GET /confirm", func(w http.ResponseWriter, _ *http.Request) { fake.confirms.Add(1) })
	fake.srv = httptest.NewTLSServer(mux)
	t.Cleanup(fake.srv.Close)
	return fake
}

func (s *snsFake) sign(t *testing.T, body string) string {
	t.Helper()
	out, err := provider.SignSNS([]byte(body), s.key)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// TestTelnaSNS: Telna's SNS envelope end to end against a loopback SNS: the
// subscription is confirmed by visiting SubscribeURL (and nothing stored),
// never on a host off the allowlist; a signed notification is stored; a
// modified one, or one whose certificate is off the allowlist, is 401.
func TestTelnaSNS(t *testing.T) {
	sns := newSNSFake(t)
	reg, err := provider.Load("", provider.Options{SNSHosts: []string{"127.0.0.1"}, HTTPClient: sns.srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	f := startWith(t, natstest.Start(t), map[string]string{}, reg)
	url := f.url + "/webhooks/telna"
	certURL := sns.srv.URL + "/cert.pem"

	confirm := `{"Type":"SubscriptionConfirmation","MessageId":"m-1","Token":"tok","TopicArn":"arn:aws:sns:eu-west-1:1:telna","Message":"confirm","SubscribeURL":"` + sns.srv.URL + `/confirm","Timestamp":"2026-04-26T20:45:04.751Z","SigningCertURL":"` + certURL + `"}`
	before := stored(t, f)
	if got := send(t, http.MethodPost, url, sns.sign(t, confirm), nil); got != 200 {
		t.Fatalf("confirmation: %d", got)
	}
	if sns.confirms.Load() != 1 || stored(t, f) != before {
		t.Errorf("confirmations %d, stored %d", sns.confirms.Load(), stored(t, f)-before)
	}
	offList := strings.Replace(confirm, sns.srv.URL+"/confirm", "https://sns.example.com/confirm", 1)
	if got := send(t, http.MethodPost, url, sns.sign(t, offList), nil); got != http.StatusBadGateway {
		t.Errorf("SubscribeURL off the allowlist: %d, want 502", got)
	}

	msg := `{\"eventName\":\"PACKAGE_DATA_USAGE_ALERT\",\"timestamp\":1760000000000,\"eventDetails\":{\"iccid\":\"8912000000000000030\",\"usagePercentage\":80}}`
	note := `{"Type":"Notification","MessageId":"m-2","TopicArn":"arn:aws:sns:eu-west-1:1:telna","Message":"` + msg + `","Timestamp":"2026-04-26T20:45:04.751Z","SigningCertURL":"` + certURL + `"}`
	signed := sns.sign(t, note)
	if got := send(t, http.MethodPost, url, signed, nil); got != 200 {
		t.Fatalf("notification: %d", got)
	}
	m := lastMsg(t, f, stream.Events, f.names.EventSubject(event.DataUsage))
	ev, err := reg.DecodeStored(event.Decoder{}, m.Header, m.Data)
	if err != nil || ev.ICCID != "8912000000000000030" || ev.UsagePercent != 80 || ev.NotifyID != "m-2" || ev.Provider != "telna" {
		t.Errorf("decoded %+v, %v", ev, err)
	}
	before = stored(t, f)
	if got := send(t, http.MethodPost, url, strings.Replace(signed, "80}", "10}", 1), nil); got != 401 {
		t.Errorf("modified notification: %d, want 401", got)
	}
	if got := send(t, http.MethodPost, url, strings.Replace(signed, sns.srv.URL, "https://127.0.0.2:1", 1), nil); got != 401 {
		t.Errorf("certificate elsewhere: %d, want 401", got)
	}
	if got := send(t, http.MethodPost, url, note, nil); got != 401 {
		t.Errorf("unsigned: %d, want 401", got)
	}
	if stored(t, f) != before {
		t.Errorf("a refused notification was stored")
	}
}
