package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func runNotifyCLI(t *testing.T, args ...string) (string, error) {
	t.Helper()
	root := newRoot()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.Execute()
	return out.String(), err
}

func TestNotifyPreview(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "en"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "en", "activation.tmpl"), []byte(`{{define "subject"}}Custom {{.ICCIDTail}}{{end}}{{define "text"}}x{{end}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		args    []string
		want    []string
		wantErr string
	}{
		{"all parts", []string{"--kind", "activation", "--locale", "de"}, []string{"Locale:  de", "Subject: Ihre eSIM ist aktiv", "--- text", "Hallo Ana,", "--- sms", "--- html", "<html lang=\"de\">"}, ""},
		{"low data subject", []string{"--kind", "low_data", "--threshold", "80", "--part", "subject"}, []string{"You have used 80% of your data"}, ""},
		{"data exhausted defaults to 100", []string{"--kind", "data_exhausted", "--locale", "es", "--total", "2GB", "--part", "text"}, []string{"ha usado todos sus datos (2 GB)"}, ""},
		{"validity sms", []string{"--kind", "validity_low", "--days", "1", "--part", "sms", "--name", ""}, []string{"expires in 1 day."}, ""},
		{"fallback to English", []string{"--kind", "activation", "--locale", "fr", "--part", "all"}, []string{"Locale:  en"}, ""},
		{"template dir", []string{"--kind", "activation", "--template-dir", dir, "--part", "subject", "--iccid", "89000000000000009999"}, []string{"Custom 9999"}, ""},
		{"what the traveller needs", []string{"--kind", "activation", "--part", "all"}, []string{"LPA:1$rsp.example.com$K2-1A2B3C-4D5E6F",
			"https://esimsetup.apple.com/esim_qrcode_provisioning?carddata=LPA%3A1%24", `src="cid:qr.esimflow"`}, ""},
		{"every locale", []string{"--kind", "low_data", "--locale", "all", "--part", "text"}, []string{"=== de", "=== en", "=== es",
			"Top up: https://shop.example/topup?iccid=8901234567890123456", "Aufladen: https://shop.example/topup", "Recargar: https://shop.example/topup"}, ""},
		{"whatsapp parameters", []string{"--kind", "low_data", "--locale", "pt-BR", "--part", "vars"}, []string{"WhatsApp template: esimflow_low_data (en)",
			"threshold = 80", "topup_url = https://shop.example/topup?iccid=8901234567890123456"}, ""},
		{"unknown kind", []string{"--kind", "welcome"}, nil, "--kind"},
		{"no kind", []string{}, nil, "kind"},
		{"bad volume", []string{"--kind", "low_data", "--used", "lots"}, nil, "--used"},
		{"bad part", []string{"--kind", "activation", "--part", "pdf"}, nil, "--part"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := runNotifyCLI(t, append([]string{"notify", "preview"}, tt.args...)...)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("err = %v, want one naming %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v\n%s", err, out)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

func TestParseVolume(t *testing.T) {
	for in, want := range map[string]int64{"1073741824": 1 << 30, "1GB": 1 << 30, "1.5 gb": 3 << 29, "800MB": 800 << 20, "12KB": 12 << 10, "0": 0} {
		if got, err := parseVolume(in); err != nil || got != want {
			t.Errorf("parseVolume(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
}
