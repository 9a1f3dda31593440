package template_test

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/esimflow/esimflow/notifier/template"
)

var update = flag.Bool("update", false, "rewrite the golden files")

// format lays a rendered message out for a golden file.
func format(r template.Rendered) string {
	return fmt.Sprintf("locale: %s\nsubject: %s\n--- text\n%s\n--- sms\n%s\n--- html\n%s\n", r.Locale, r.Subject, r.Text, r.SMS, r.HTML)
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	file := filepath.Join("testdata", name+".golden")
	if *update {
		if err := os.WriteFile(file, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if got != string(want) {
		t.Errorf("%s differs from the golden file:\n--- got\n%s\n--- want\n%s", file, got, want)
	}
}

const gb = 1 << 30

// TestGolden renders every kind in every built-in locale.
func TestGolden(t *testing.T) {
	s, err := template.New("")
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		kind template.Kind
		data template.Data
	}{
		{"activation", template.Activation, template.Data{Name: "Ana", ICCID: "8901234567890123456", TotalBytes: 3 * gb}},
		{"activation_no_name_no_plan", template.Activation, template.Data{ICCID: "8901234567890123456"}},
		{"activation_install", template.Activation, template.Data{Name: "Ana", ICCID: "8901234567890123456", TotalBytes: 3 * gb,
			ActivationCode: "LPA:1$rsp.example.com$K2-1A2B3C-4D5E6F", QRInline: true}},
		{"activation_provider_page_and_qr", template.Activation, template.Data{ICCID: "8901234567890123456",
			QRCodeURL: "https://p.example/qr/1.png", InstallURL: "https://p.example/i/1"}},
		{"low_data_80_top_up", template.LowData, template.Data{Name: "Ana", ICCID: "8901234567890123456", Threshold: 80, UsedBytes: 859832320, TotalBytes: gb,
			TopUpURL: "https://shop.example/topup?iccid=8901234567890123456"}},
		{"data_exhausted_top_up", template.DataExhausted, template.Data{ICCID: "8901234567890123456", Threshold: 100, UsedBytes: gb, TotalBytes: gb,
			TopUpURL: "https://shop.example/topup?iccid=8901234567890123456"}},
		{"validity_low_top_up", template.ValidityLow, template.Data{ICCID: "8901234567890123456", RemainDays: 3,
			TopUpURL: "https://shop.example/topup?iccid=8901234567890123456"}},
		{"low_data_80", template.LowData, template.Data{Name: "Ana", ICCID: "8901234567890123456", Threshold: 80, UsedBytes: 859832320, TotalBytes: gb}},
		{"low_data_50_big_plan", template.LowData, template.Data{Name: "Ana", ICCID: "8901234567890123456", Threshold: 50, UsedBytes: 5 * gb, TotalBytes: 10*gb + gb/2}},
		{"data_exhausted", template.DataExhausted, template.Data{Name: "Ana", ICCID: "8901234567890123456", Threshold: 100, UsedBytes: gb, TotalBytes: gb}},
		{"validity_low_3_days", template.ValidityLow, template.Data{Name: "Ana", ICCID: "8901234567890123456", RemainDays: 3, UsedBytes: gb / 4, TotalBytes: gb}},
		{"validity_low_1_day", template.ValidityLow, template.Data{ICCID: "8901234567890123456", RemainDays: 1}},
		{"topped_up", template.ToppedUp, template.Data{Name: "Ana", ICCID: "8901234567890123456", UsedBytes: gb / 2, TotalBytes: 3 * gb}},
		{"renewed", template.Renewed, template.Data{Name: "Ana", ICCID: "8901234567890123456", ExpiresAt: time.Date(2024, 3, 14, 12, 0, 0, 0, time.UTC)}},
	}
	for _, locale := range []string{"en", "de", "es"} {
		for _, c := range cases {
			t.Run(locale+"/"+c.name, func(t *testing.T) {
				r, err := s.Render(c.kind, locale, c.data)
				if err != nil {
					t.Fatal(err)
				}
				if r.Locale != locale {
					t.Errorf("rendered in %q, want %q", r.Locale, locale)
				}
				golden(t, locale+"_"+c.name, format(r))
			})
		}
	}
}

func TestLocaleFallback(t *testing.T) {
	s, err := template.New("")
	if err != nil {
		t.Fatal(err)
	}
	for asked, want := range map[string]string{"": "en", "en": "en", "de": "de", "de-AT": "de", "de_at": "de", "ES": "es", "fr": "en", "pt-BR": "en", "not a locale!": "en"} {
		r, err := s.Render(template.Activation, asked, template.Data{ICCID: "8901"})
		if err != nil || r.Locale != want {
			t.Errorf("locale %q rendered in %q (%v), want %q", asked, r.Locale, err, want)
		}
	}
	if got := template.Chain("pt_BR"); !slices.Equal(got, []string{"pt-br", "pt", "en"}) {
		t.Errorf("Chain(pt_BR) = %v", got)
	}
}

func TestHTMLIsEscapedTextIsNot(t *testing.T) {
	s, err := template.New("")
	if err != nil {
		t.Fatal(err)
	}
	r, err := s.Render(template.Activation, "en", template.Data{Name: `<b>Ana & "Bo"</b>`, ICCID: "8901"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(r.Text, `Hi <b>Ana & "Bo"</b>,`) {
		t.Errorf("text mangled the name: %q", r.Text)
	}
	if strings.Contains(r.HTML, "<b>Ana") || !strings.Contains(r.HTML, "&lt;b&gt;Ana &amp; &#34;Bo&#34;&lt;/b&gt;") {
		t.Errorf("html did not escape the name: %q", r.HTML)
	}
}

func write(t *testing.T, dir, name, content string) {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestOverrideDirectory(t *testing.T) {
	dir := t.TempDir()
	write(t, dir, "en/activation.tmpl", `{{define "subject"}}Welcome aboard{{end}}{{define "text"}}Card {{.ICCIDTail}} works.{{end}}`)
	write(t, dir, "en/low_data_50.tmpl", `{{define "subject"}}Half way{{end}}{{define "text"}}{{.Left}} left.{{end}}`)
	write(t, dir, "fr/activation.tmpl", `{{define "subject"}}Votre eSIM est active{{end}}{{define "text"}}eSIM {{.ICCIDTail}} active.{{end}}`)
	s, err := template.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name                    string
		kind                    template.Kind
		locale                  string
		threshold               int
		subject, text, sms, htm string
	}{
		{"overridden, no html or sms part", template.Activation, "en", 0, "Welcome aboard", "Card 3456 works.", "Card 3456 works.", ""},
		{"an added locale", template.Activation, "fr-CA", 0, "Votre eSIM est active", "eSIM 3456 active.", "eSIM 3456 active.", ""},
		{"a threshold of its own", template.LowData, "en", 50, "Half way", "512 MB left.", "512 MB left.", ""},
		{"other thresholds keep the default", template.LowData, "en", 80, "You have used 80% of your data", "", "", "<!doctype html>"},
		{"German keeps its defaults", template.Activation, "de", 0, "Ihre eSIM ist aktiv", "", "", "<!doctype html>"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := s.Render(tt.kind, tt.locale, template.Data{ICCID: "8901234567890123456", Threshold: tt.threshold, UsedBytes: gb / 2, TotalBytes: gb})
			if err != nil {
				t.Fatal(err)
			}
			if r.Subject != tt.subject || (tt.text != "" && r.Text != tt.text) || (tt.sms != "" && r.SMS != tt.sms) ||
				!strings.HasPrefix(r.HTML, tt.htm) || (tt.htm == "" && r.HTML != "") {
				t.Errorf("got %+v", r)
			}
		})
	}
}

func TestBrokenOverridesStopStartUp(t *testing.T) {
	tests := map[string]struct{ file, content, want string }{
		"syntax error":   {"en/activation.tmpl", `{{define "subject"}}{{.Name{{end}}`, "activation.tmpl"},
		"no subject":     {"en/activation.tmpl", `{{define "text"}}x{{end}}`, `"subject"`},
		"unknown field":  {"de/activation.tmpl", `{{define "subject"}}{{.Plan}}{{end}}{{define "text"}}x{{end}}`, "Plan"},
		"unknown kind":   {"en/welcome.tmpl", `{{define "subject"}}x{{end}}{{define "text"}}x{{end}}`, "welcome.tmpl"},
		"upper locale":   {"DE/activation.tmpl", `{{define "subject"}}x{{end}}{{define "text"}}x{{end}}`, "DE"},
		"stray file":     {"README.md", "notes", "README.md"},
		"nested too far": {"en/x/activation.tmpl", `{{define "subject"}}x{{end}}{{define "text"}}x{{end}}`, "en/x"},
	}
	for name, tt := range tests {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			write(t, dir, tt.file, tt.content)
			_, err := template.New(dir)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New = %v; want an error naming %q", err, tt.want)
			}
		})
	}
	if _, err := template.New(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("a missing directory: New succeeded")
	}
}

func TestBytes(t *testing.T) {
	tests := []struct {
		n      int64
		locale string
		want   string
	}{
		{0, "en", "0 MB"},
		{100, "en", "1 KB"},
		{300 << 10, "en", "300 KB"},
		{214 << 20, "en", "214 MB"},
		{gb, "en", "1 GB"},
		{gb + gb/2, "en", "1.5 GB"},
		{gb + gb/2, "de", "1,5 GB"},
		{gb + gb/2, "es-MX", "1,5 GB"},
		{10*gb + gb/2, "en", "10.5 GB"},
	}
	for _, tt := range tests {
		if got := template.Bytes(tt.n, tt.locale); got != tt.want {
			t.Errorf("Bytes(%d, %s) = %q, want %q", tt.n, tt.locale, got, tt.want)
		}
	}
}
