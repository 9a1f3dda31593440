package event_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/esimflow/esimflow/shared/event"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// TestDecodeFixtures decodes every provider fixture and compares the canonical
// event with its golden file (regenerate with -update after checking the diff).
func TestDecodeFixtures(t *testing.T) {
	files, err := filepath.Glob("testdata/*.json")
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures: %v", err)
	}
	for _, f := range files {
		if strings.HasSuffix(f, ".golden.json") {
			continue
		}
		t.Run(filepath.Base(f), func(t *testing.T) {
			body, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			ev, err := event.Decode(body)
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if ev.Type == event.Unknown {
				t.Fatalf("fixture decoded as unknown type")
			}
			got, _ := json.MarshalIndent(ev, "", "  ")
			golden := strings.TrimSuffix(f, ".json") + ".golden.json"
			if *update {
				if err := os.WriteFile(golden, append(got, '\n'), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("golden: %v (run with -update)", err)
			}
			if !bytes.Equal(bytes.TrimSpace(got), bytes.TrimSpace(want)) {
				t.Errorf("decoded event differs from %s:\n got: %s\nwant: %s", golden, got, want)
			}
		})
	}
}

// TestFixturesMatchShared keeps testdata/ equal to the project's reference
// fixtures (../shared/fixtures beside the repository), when that folder exists.
func TestFixturesMatchShared(t *testing.T) {
	ref := filepath.Join("..", "..", "..", "shared", "fixtures")
	files, _ := filepath.Glob(filepath.Join(ref, "*.json"))
	if len(files) == 0 {
		t.Skipf("no reference fixtures at %s", ref)
	}
	for _, f := range files {
		want, _ := os.ReadFile(f)
		got, err := os.ReadFile(filepath.Join("testdata", filepath.Base(f)))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("testdata/%s is missing or differs from %s: copy it", filepath.Base(f), f)
		}
	}
}

func TestDecode(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		wantErr error
		check   func(t *testing.T, ev event.Event)
	}{
		{name: "numbers as strings", body: `{"eventType":"DATA_USAGE","iccid":"1","usedVolume":"800","totalVolume":"1000","usagePercent":"80"}`,
			check: func(t *testing.T, ev event.Event) {
				if ev.UsedVolume != 800 || ev.TotalVolume != 1000 || ev.UsagePercent != 80 || !ev.HasUsage {
					t.Errorf("usage = %+v", ev)
				}
			}},
		{name: "percent computed from volumes", body: `{"eventType":"DATA_USAGE","iccid":"1","usedVolume":500,"totalVolume":1000}`,
			check: func(t *testing.T, ev event.Event) {
				if ev.UsagePercent != 50 {
					t.Errorf("percent = %v, want 50", ev.UsagePercent)
				}
			}},
		{name: "esim access used from remain", body: `{"notifyType":"DATA_USAGE","content":{"iccid":"1","totalVolume":1000,"remain":"0"}}`,
			check: func(t *testing.T, ev event.Event) {
				if ev.UsedVolume != 1000 || ev.UsagePercent != 100 {
					t.Errorf("usage = %+v", ev)
				}
			}},
		{name: "unknown fields kept", body: `{"eventType":"PROFILE_STATUS","iccid":"1","currentStatus":"ACTIVATED","planCode":"EU-7D","x":{"y":1}}`,
			check: func(t *testing.T, ev event.Event) {
				if string(ev.Extra["planCode"]) != `"EU-7D"` || string(ev.Extra["x"]) != `{"y":1}` {
					t.Errorf("extra = %v", ev.Extra)
				}
			}},
		{name: "envelope fields kept", body: `{"notifyType":"ORDER_STATUS","notifyId":"n-1","eventGenerateTime":"2024-01-01T00:00:00Z","content":{"orderNo":"B1","orderStatus":"GOT_RESOURCE","extraC":1},"extraTop":2}`,
			check: func(t *testing.T, ev event.Event) {
				if ev.NotifyID != "n-1" || ev.Timestamp.IsZero() || ev.Extra["extraC"] == nil || ev.Extra["extraTop"] == nil {
					t.Errorf("ev = %+v", ev)
				}
			}},
		{name: "listed profile's install data (a poll of the order)", body: `{"notifyType":"ORDER_STATUS","eventGenerateTime":"2024-01-01T00:00:00Z","content":{"orderNo":"B1","orderStatus":"GOT_RESOURCE","profiles":[{"iccid":"8910","esimTranNo":"T1","status":"GOT_RESOURCE","ac":"LPA:1$smdp.example$ABC","qrCodeUrl":"https://p.example/qr.png","shortUrl":"https://p.example/i"}]}}`,
			check: func(t *testing.T, ev event.Event) {
				want := event.ProfileRef{ICCID: "8910", EsimTranNo: "T1", Status: "GOT_RESOURCE", ActivationCode: "LPA:1$smdp.example$ABC", QRCodeURL: "https://p.example/qr.png", InstallURL: "https://p.example/i"}
				if len(ev.Profiles) != 1 || ev.Profiles[0] != want {
					t.Errorf("profiles = %+v, want %+v", ev.Profiles, want)
				}
			}},
		{name: "install data bounded", body: `{"eventType":"ORDER_STATUS","orderNo":"B1","status":"GOT_RESOURCE","profiles":[{"iccid":"8910","ac":"` + strings.Repeat("x", event.MaxInstallLen+1) + `"}]}`,
			wantErr: event.ErrMalformed},
		{name: "unix millis timestamp", body: `{"eventType":"PROFILE_STATUS","iccid":"1","currentStatus":"ACTIVATED","timestamp":1705327200000}`,
			check: func(t *testing.T, ev event.Event) {
				if ev.Timestamp.Unix() != 1705327200 {
					t.Errorf("timestamp = %v", ev.Timestamp)
				}
			}},
		{name: "lower-case type", body: `{"eventType":"profile_status","iccid":"1","currentStatus":"ACTIVATED"}`,
			check: func(t *testing.T, ev event.Event) {
				if ev.Type != event.ProfileStatus {
					t.Errorf("type = %v", ev.Type)
				}
			}},
		{name: "health check", body: `{"notifyType":"CHECK_HEALTH","content":{}}`,
			check: func(t *testing.T, ev event.Event) {
				if ev.Type != event.CheckHealth {
					t.Errorf("type = %v", ev.Type)
				}
			}},
		{name: "unknown type", body: `{"eventType":"REFUND","orderNo":"1"}`,
			check: func(t *testing.T, ev event.Event) {
				if ev.Type != event.Unknown {
					t.Errorf("type = %v", ev.Type)
				}
			}},
		{name: "array is unknown, not an error", body: `[1,2]`,
			check: func(t *testing.T, ev event.Event) {
				if ev.Type != event.Unknown || ev.Format != event.FormatOther {
					t.Errorf("ev = %+v", ev)
				}
			}},
		{name: "not JSON", body: `{"eventType":`, wantErr: event.ErrInvalidJSON},
		{name: "empty body", body: ``, wantErr: event.ErrInvalidJSON},
		{name: "word for a number", body: `{"eventType":"DATA_USAGE","iccid":"1","usedVolume":"lots","totalVolume":1}`, wantErr: event.ErrMalformed,
			check: func(t *testing.T, ev event.Event) {
				if ev.Type != event.DataUsage {
					t.Errorf("malformed event lost its type: %v", ev.Type)
				}
			}},
		{name: "missing iccid", body: `{"eventType":"PROFILE_STATUS","currentStatus":"ACTIVATED"}`, wantErr: event.ErrMalformed},
		{name: "missing order status", body: `{"eventType":"ORDER_STATUS","orderNo":"1"}`, wantErr: event.ErrMalformed},
		{name: "no usage figures", body: `{"eventType":"DATA_USAGE","iccid":"1"}`, wantErr: event.ErrMalformed},
		{name: "bad timestamp", body: `{"eventType":"PROFILE_STATUS","iccid":"1","currentStatus":"A","timestamp":"yesterday"}`, wantErr: event.ErrMalformed},
		{name: "content not an object", body: `{"notifyType":"ESIM_STATUS","content":"x"}`, wantErr: event.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev, err := event.Decode([]byte(tt.body))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if tt.check != nil {
				tt.check(t, ev)
			}
		})
	}
}

func FuzzDecode(f *testing.F) {
	files, _ := filepath.Glob("testdata/*.json")
	for _, file := range files {
		b, _ := os.ReadFile(file)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		ev, err := event.Decode(body)
		if err == nil && json.Valid(body) && ev.Type == "" {
			t.Errorf("decoded without a type")
		}
	})
}
