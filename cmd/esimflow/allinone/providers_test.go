package allinone_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/esimflow/esimflow/shared/poll"
	"github.com/esimflow/esimflow/shared/store"
)

// TestResellerThreeProviders is a reseller buying from three providers at
// once: an eSIM of each goes through its life as its provider reports it —
// eSIM Access (its envelope: IN_USE, usage at 50, 85, 100 %), eSIM Go
// (FirstAttachment, usage callbacks at its own 1/50/80/100 %), 1GLOBAL (its
// 80 % and 100 % thresholds) — and both operator alerts arrive (Airalo's
// credit limit, eSIM Go's LowBalance). Each customer gets the reseller's
// messages in their language, decided by the reseller's thresholds (80,
// 100 %), whatever the provider's: one 80 % and one 100 % warning each, and one activation where
// the provider reports one (1GLOBAL sends no activation event); the operator
// alerts reach no customer and are parked; an eSIM Access SMDP_EVENT moves
// its profile's state and sends nothing.
func TestResellerThreeProviders(t *testing.T) {
	sys := start(t, map[string]string{"ESIMFLOW_DATA_DIR": t.TempDir()})
	base := strings.TrimSuffix(sys.Hook, "/esim")
	const (
		ea   = "8901000000000000001"
		eg   = "8944000000000000002"
		og   = "8930000000000000003"
		smdp = "8910000000000000004"
	)
	// The customers, each in their language, found by their ICCID (none of
	// these providers names the reseller's transaction).
	for iccid, c := range map[string]string{
		ea: `{"name":"Jonas","locale":"de","channels":["console"],"iccids":["` + ea + `"]}`,
		eg: `{"name":"Lucía","locale":"es","channels":["console"],"iccids":["` + eg + `"]}`,
		og: `{"name":"Ana","locale":"en","channels":["console"],"iccids":["` + og + `"]}`,
	} {
		req, _ := http.NewRequest(http.MethodPut, sys.API+"/v1/contacts/shop-"+iccid, strings.NewReader(c))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			t.Fatalf("PUT contact %s: %d", iccid, resp.StatusCode)
		}
	}
	gb := int64(1 << 30)
	send := func(provider, body string) {
		t.Helper()
		resp, err := http.Post(base+"/"+provider, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("POST %s %s: %d", provider, body, resp.StatusCode)
		}
		// Reports come hours apart: each is handled before the next (a
		// 100 % report handled with the 80 % one makes the 80 % warning
		// stale, and the notifier rightly drops it).
		waitForQuiet(t, sys.API)
	}
	// eSIM Access, by its envelope on the default endpoint.
	send("esim", `{"notifyType":"ESIM_STATUS","notifyId":"ea-1","eventGenerateTime":"2026-11-01T08:00:00Z","content":{"iccid":"`+ea+`","orderNo":"B1","esimTranNo":"T1","esimStatus":"IN_USE","smdpStatus":"ENABLED"}}`)
	for i, pct := range []int64{50, 85, 100} {
		send("esim", fmt.Sprintf(`{"notifyType":"DATA_USAGE","notifyId":"ea-u%d","eventGenerateTime":"2026-11-01T%02d:00:00Z","content":{"iccid":"%s","orderNo":"B1","esimTranNo":"T1","totalVolume":%d,"orderUsage":%d,"remain":%d}}`,
			i, 9+i, ea, gb, gb*pct/100, gb-gb*pct/100))
	}
	// An SMDP_EVENT moves state and sends nothing by itself.
	send("esim", `{"notifyType":"SMDP_EVENT","notifyId":"ea-s","eventGenerateTime":"2026-11-01T07:00:00Z","content":{"iccid":"`+smdp+`","eid":"8904","orderNo":"B2","esimTranNo":"T2","esimStatus":"IN_USE","smdpStatus":"ENABLED","seqNumber":113,"notifyStatus":"Executed-Success"}}`)
	// eSIM Go: V3 callbacks, in bytes, untimed: ordered by arrival.
	send("esimgo", `{"alertType":"FirstAttachment","iccid":"`+eg+`"}`)
	for _, pct := range []int64{1, 50, 80, 100} {
		send("esimgo", fmt.Sprintf(`{"alertType":"Utilisation","iccid":"%s","bundle":{"name":"EU_1GB","initialQuantity":%d,"remainingQuantity":%d}}`, eg, gb, gb*(100-pct)/100))
	}
	// 1GLOBAL: its thresholds, with the bytes left.
	for i, pct := range []int64{80, 100} {
		send("oneglobal", fmt.Sprintf(`{"id":"og-%d","type":"USAGE_THRESHOLD","iccid":"%s","subscription_id":"S3","threshold":%d,"current_balance":%d}`, i, og, pct, gb*(100-pct)/100))
	}
	// Operator alerts.
	send("airalo", `{"message":"Surpassed 80% of the credit limit balance","remaining":225.35}`)
	send("esimgo", `{"alertType":"LowBalance","balanceInfo":{"balance":1299.3,"threshold":2600,"thresholdPercentRemaining":49.973}}`)

	want := map[string][]string{
		ea: {"activation", "low_data:80", "low_data:100"},
		eg: {"activation", "low_data:80", "low_data:100"},
		og: {"low_data:80", "low_data:100"},
	}
	got := func() map[string][]string {
		out := map[string][]string{}
		for _, m := range notifyLine.FindAllStringSubmatch(sys.Messages.String(), -1) {
			kind := m[2]
			if kind == "low_data" {
				kind += ":" + m[1][strings.LastIndexByte(m[1], ':')+1:]
			}
			out[m[3]] = append(out[m[3]], kind)
		}
		return out
	}
	defer func() {
		if t.Failed() {
			t.Logf("messages:\n%s", sys.Messages.String())
		}
	}()
	poll.Until(t, "every customer's messages", func() bool {
		g := got()
		for iccid, kinds := range want {
			if len(g[iccid]) < len(kinds) {
				return false
			}
		}
		return true
	})
	waitForQuiet(t, sys.API)
	g := got()
	for iccid, kinds := range want {
		if strings.Join(g[iccid], ",") != strings.Join(kinds, ",") {
			t.Errorf("%s: messages %v, want %v", iccid, g[iccid], kinds)
		}
	}
	greeting := map[string]string{ea: "Hallo Jonas", eg: "Hola, Lucía", og: "Hi Ana"}
	for _, line := range strings.Split(sys.Messages.String(), "\n") {
		if m := notifyLine.FindStringSubmatch(line); m != nil && !strings.Contains(line, greeting[m[3]]) {
			t.Errorf("%s: not in its customer's language (%q): %s", m[3], greeting[m[3]], line)
		}
	}
	if len(g) != len(want) {
		t.Errorf("messages to %d eSIMs, want %d: %v", len(g), len(want), g)
	}
	for _, iccid := range []string{ea, eg, og} {
		var p store.Profile
		if code := getJSON(t, sys.API+"/v1/profiles/"+iccid, &p); code != 200 || p.UsagePercent != 100 {
			t.Errorf("profile %s: %d %+v", iccid, code, p)
		}
	}
	var sp store.Profile
	if code := getJSON(t, sys.API+"/v1/profiles/"+smdp, &sp); code != 200 || sp.Status != "IN_USE" || sp.SmdpStatus != "ENABLED" {
		t.Errorf("profile of the SMDP_EVENT: %d %+v", code, sp)
	}
	var parked struct {
		Parked []struct {
			Type     string `json:"type"`
			InStream uint64 `json:"inStream"`
		}
	}
	getJSON(t, sys.API+"/v1/parked", &parked)
	for _, p := range parked.Parked {
		if p.Type == "operator_alert" && p.InStream != 2 {
			t.Errorf("operator alerts in the stream: %d, want 2", p.InStream)
		}
	}
	if t.Failed() {
		t.Logf("messages:\n%s", sys.Messages.String())
	}
}

// TestEveryProviderSample posts every provider sample of
// ../shared/fixtures/providers to its provider's endpoint of a running
// all-in-one: each is answered 200 and stored, except Telna's, whose example
// signature is not a real one (401, nothing stored); none is dead-lettered;
// the requests to Airalo that are not webhooks are parked as unknown, the
// operator alerts as operator alerts; each activation the samples report
// reaches its customer, and the SMDP_EVENT's profile gets none.
func TestEveryProviderSample(t *testing.T) {
	dir := filepath.Join("..", "..", "..", "..", "shared", "fixtures", "providers")
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	if len(files) == 0 {
		t.Skipf("no provider samples at %s (CI clones them beside the repository)", dir)
	}
	sys := start(t, map[string]string{"ESIMFLOW_DATA_DIR": t.TempDir()})
	base := strings.TrimSuffix(sys.Hook, "/esim")
	for _, f := range files {
		body, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		name, _, _ := strings.Cut(filepath.Base(f), "_")
		resp, err := http.Post(base+"/"+name, "application/json", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		want := 200
		if name == "telna" {
			want = 401
		}
		if resp.StatusCode != want {
			t.Errorf("%s: %d, want %d", filepath.Base(f), resp.StatusCode, want)
		}
		waitForQuiet(t, sys.API)
	}
	var dlq struct{ DeadLetters []json.RawMessage }
	if code := getJSON(t, sys.API+"/v1/dlq", &dlq); code != 200 || len(dlq.DeadLetters) != 0 {
		t.Errorf("dead letters (%d): %s", code, dlq.DeadLetters)
	}
	var parked struct {
		Parked []struct {
			Type     string `json:"type"`
			InStream uint64 `json:"inStream"`
		}
	}
	getJSON(t, sys.API+"/v1/parked", &parked)
	wantParked := map[string]uint64{"unknown": 3, "operator_alert": 2, "check_health": 0}
	for _, p := range parked.Parked {
		if w, ok := wantParked[p.Type]; ok && p.InStream != w {
			t.Errorf("parked %s: %d, want %d", p.Type, p.InStream, w)
		}
	}
	activated := map[string]bool{}
	for _, m := range notifyLine.FindAllStringSubmatch(sys.Messages.String(), -1) {
		if m[2] == "activation" {
			activated[m[3]] = true
		}
	}
	for _, iccid := range []string{"8910300000059824319", "8944538532008160222", "8991234567890123456"} {
		if !activated[iccid] {
			t.Errorf("no activation for %s", iccid)
		}
	}
	if activated["8910300000059818839"] {
		t.Errorf("the SMDP_EVENT's profile was told it is active")
	}
	if t.Failed() {
		t.Logf("messages:\n%s", sys.Messages.String())
	}
}
