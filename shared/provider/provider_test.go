package provider_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/esimflow/esimflow/shared/event"
	"github.com/esimflow/esimflow/shared/provider"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// fixtures is the project's provider samples, beside the repository (CI
// clones it there); they are read where they are, never copied.
var fixtures = filepath.Join("..", "..", "..", "shared", "fixtures", "providers")

// clock is the decoders' now: after every sample's time.
var dc = event.Decoder{Now: func() time.Time { return time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC) }}

func registry(t testing.TB) *provider.Registry {
	t.Helper()
	r, err := provider.Load("", provider.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// providerOf names a sample's provider by its file name's prefix.
func providerOf(file string) string {
	name, _, _ := strings.Cut(filepath.Base(file), "_")
	return name
}

// TestFixtures reads every provider sample with its provider's adapter and
// compares the canonical events, every field, with its golden file
// (testdata/golden; regenerate with -update after reading the diff).
func TestFixtures(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join(fixtures, "*.json"))
	if len(files) == 0 {
		t.Skipf("no provider samples at %s (CI clones them beside the repository)", fixtures)
	}
	reg := registry(t)
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			a, ok := reg.Get(providerOf(f))
			if !ok {
				t.Fatalf("no adapter %q", providerOf(f))
			}
			body, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, filepath.Join("testdata", "golden", strings.TrimSuffix(filepath.Base(f), ".json")+".golden.json"), a.Decode(dc, body))
		})
	}
}

// TestOwnSamples are bodies the providers describe but publish no sample
// of (testdata/samples): the same golden check.
func TestOwnSamples(t *testing.T) {
	files, _ := filepath.Glob(filepath.Join("testdata", "samples", "*.json"))
	reg := registry(t)
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			a, _ := reg.Get(providerOf(f))
			body, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			golden(t, filepath.Join("testdata", "golden", strings.TrimSuffix(filepath.Base(f), ".json")+".golden.json"), a.Decode(dc, body))
		})
	}
}

// result is a Decoded as a golden file shows it.
type result struct {
	Event event.Event `json:"event"`
	Err   string      `json:"error,omitempty"`
}

func golden(t *testing.T, path string, got []provider.Decoded) {
	t.Helper()
	out := make([]result, len(got))
	for i, d := range got {
		out[i].Event = d.Event
		if d.Err != nil {
			out[i].Err = d.Err.Error()
		}
	}
	data, _ := json.MarshalIndent(out, "", "  ")
	data = append(data, '\n')
	if *update {
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("golden: %v (run with -update)", err)
	}
	if !bytes.Equal(data, want) {
		t.Errorf("events differ from %s:\n got: %s\nwant: %s", path, data, want)
	}
}

// TestFixtureFields states, field by field, what the samples mean: the
// golden files hold the rest.
func TestFixtureFields(t *testing.T) {
	if _, err := os.Stat(fixtures); err != nil {
		t.Skipf("no provider samples at %s", fixtures)
	}
	type want struct {
		typ                        event.Type
		iccid, status, sub, notify string
		pct                        float64
		used, total, remain        int64
		remainDays                 int64
		alert                      string
		balance                    float64
		timestamp                  string
	}
	tests := map[string][]want{
		"airalo_low_data.json": {
			{typ: event.DataUsage, iccid: "87123123456889019", pct: 57},
			{typ: event.ValidityUsage, iccid: "87123123456889019", remainDays: 3},
		},
		"airalo_credit_limit.json":                  {{typ: event.OperatorAlert, alert: "Surpassed 80% of the credit limit balance", balance: 225.35}},
		"airalo_optin_low_data_request.json":        {{typ: event.Unknown}},
		"airalo_simulator_request.json":             {{typ: event.Unknown}},
		"airalo_async_order_accepted_response.json": {{typ: event.Unknown}},
		"esimaccess_esim_status.json":               {{typ: event.EsimStatus, iccid: "8910300000059824319", status: "IN_USE", sub: "26042216320015", notify: "83eb2b243a5545d38ec26cebfcf4bd8d", timestamp: "2026-04-22T17:27:44Z"}},
		"esimaccess_smdp_event.json":                {{typ: event.SmdpEvent, iccid: "8910300000059818839", status: "IN_USE", sub: "26042112200028", notify: "7d6ab37b44b9461087569ad4393a8b4c", timestamp: "2026-04-22T17:29:40Z"}},
		"esimaccess_data_usage.json":                {{typ: event.DataUsage, iccid: "89852240810732202668", sub: "26041615170028", notify: "7cb37a1e9ed2468e9243e6ccae682125", used: 10741066164, total: 21474836480, remain: 10733770316, pct: 50.01698696985841, timestamp: "2026-04-22T17:21:59Z"}},
		"esimaccess_validity_usage.json":            {{typ: event.ValidityUsage, iccid: "8981440039980773689", sub: "26032416140018", notify: "d84977dbcdbd48eb96379300b1605b04", remainDays: 1, timestamp: "2026-04-22T17:13:54Z"}},
		"esimaccess_order_status.json":              {{typ: event.OrderStatus, status: "GOT_RESOURCE", notify: "447602ac1e5c4bb4980f786b0c2934d6", timestamp: "2026-04-22T17:16:34Z"}},
		"esimaccess_check_health.json":              {{typ: event.CheckHealth, notify: "918ff7f6f41143078585a85797e613f7", timestamp: "2026-04-22T11:31:33Z"}},
		"esimgo_v2_usage_utilisation.json":          {{typ: event.DataUsage, iccid: "8944538532008160222", total: 1_000_000_000, remain: 90_000_000, used: 910_000_000, pct: 91}},
		"esimgo_v3_first_use.json": {
			{typ: event.DataUsage, iccid: "8944538532008160222", total: 1_000_000_000, remain: 1_000_000_000, used: 0, pct: 0},
			{typ: event.EsimStatus, iccid: "8944538532008160222", status: "IN_USE"},
		},
		"esimgo_first_attachment.json":             {{typ: event.EsimStatus, iccid: "8944538532008160222", status: "ACTIVATED"}},
		"esimgo_deletion_scheduled.json":           {{typ: event.EsimStatus, iccid: "8943108161000670038", status: "DELETION_SCHEDULED", timestamp: "2026-06-22T13:03:31Z"}},
		"esimgo_deleted.json":                      {{typ: event.EsimStatus, iccid: "8943108161000670038", status: "DELETED", timestamp: "2026-06-29T13:20:02Z"}},
		"esimgo_low_balance.json":                  {{typ: event.OperatorAlert, alert: "eSIM Go account balance below its threshold", balance: 1299.3}},
		"roamify_esim_status.json":                 {{typ: event.EsimStatus, iccid: "8991234567890123456", status: "ACTIVATED", sub: "c2a9cdae-430e-4251-bf65-a84df4562ed9", timestamp: "2023-11-14T22:13:20Z"}},
		"oneglobal_usage_threshold.json":           {{typ: event.DataUsage, iccid: "893000000002391231", sub: "ZHNhc2Rhc2Q=", notify: "1234-56789", pct: 80, remain: 1073741824}},
		"oneglobal_subscription_end.json":          {{typ: event.EsimStatus, iccid: "893000000002391231", sub: "ZHNhc2Rhc2Q=", notify: "1234-56789", status: "EXPIRED", timestamp: "2024-10-14T04:05:38Z"}},
		"oneglobal_download_progress.json":         {{typ: event.EsimStatus, iccid: "8944478600004958824", notify: "1234-56789", status: "INSTALLED"}},
		"telna_sns_subscription_confirmation.json": {{typ: event.Unknown}},
	}
	reg := registry(t)
	files, _ := filepath.Glob(filepath.Join(fixtures, "*.json"))
	for _, f := range files {
		name := filepath.Base(f)
		t.Run(name, func(t *testing.T) {
			wants, ok := tests[name]
			if !ok {
				t.Fatalf("a new sample: state what it means here")
			}
			a, _ := reg.Get(providerOf(f))
			body, _ := os.ReadFile(f)
			got := a.Decode(dc, body)
			if len(got) != len(wants) {
				t.Fatalf("%d events, want %d: %+v", len(got), len(wants), got)
			}
			for i, w := range wants {
				ev, err := got[i].Event, got[i].Err
				if err != nil {
					t.Errorf("[%d] %v", i, err)
				}
				var ts string
				if !ev.Timestamp.IsZero() {
					ts = ev.Timestamp.Format(time.RFC3339)
				}
				g := want{typ: ev.Type, iccid: ev.ICCID, status: ev.Status, sub: ev.EsimTranNo, notify: ev.NotifyID,
					pct: ev.UsagePercent, used: ev.UsedVolume, total: ev.TotalVolume, remain: ev.RemainVolume,
					remainDays: ev.RemainDays, alert: ev.Alert, balance: ev.Balance, timestamp: ts}
				if g != w {
					t.Errorf("[%d]\n got %+v\nwant %+v", i, g, w)
				}
				if a.Name() != provider.Default && (ev.Provider != a.Name() || ev.Adapter != a.Version()) {
					t.Errorf("[%d] provider %q adapter %q, want %q %q", i, ev.Provider, ev.Adapter, a.Name(), a.Version())
				}
			}
		})
	}
}

func TestInvalidJSON(t *testing.T) {
	reg := registry(t)
	for _, name := range reg.Names() {
		a, _ := reg.Get(name)
		got := a.Decode(dc, []byte(`{"iccid":`))
		if len(got) != 1 || !errors.Is(got[0].Err, event.ErrInvalidJSON) {
			t.Errorf("%s: %+v, want one event with ErrInvalidJSON", name, got)
		}
	}
}
