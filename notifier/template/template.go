// Package template renders customer messages: one template per kind and
// locale, with the subject, a plain-text body, an HTML body and a short SMS
// form.
//
// The defaults are built in (templates/<locale>/<name>.tmpl, embedded); a
// directory with the same layout (ESIMFLOW_TEMPLATE_DIR) overrides them file
// by file and may add locales. A file defines "subject" and "text", and may
// define "html" (emails then carry both parts) and "sms" (else SMS sends the
// text). Names are the kinds — activation, low_data, data_exhausted,
// validity_low — and low_data_<threshold> for a warning at one threshold.
//
// Lookup goes by locale first, then by name: for "de-AT" and a warning at
// 80 %, de-at/low_data_80, de-at/low_data, de/low_data_80, de/low_data,
// en/low_data_80, en/low_data. English is complete, so every lookup ends.
// Every template is parsed and rendered once with sample data when the Set is
// built, so a broken override stops start-up instead of a message.
package template

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"net/url"
	"os"
	"path"
	"regexp"
	"slices"
	"strconv"
	"strings"
	texttemplate "text/template"
	"time"

	localetag "github.com/esimflow/esimflow/shared/locale"
)

// Kind is what a message is about, as the templates name it.
type Kind string

const (
	Activation    Kind = "activation"
	LowData       Kind = "low_data"
	DataExhausted Kind = "data_exhausted" // low data at 100 %
	ValidityLow   Kind = "validity_low"
	ToppedUp      Kind = "topped_up" // a new data bundle (off unless ESIMFLOW_NOTIFY_TOP_UPS)
	Renewed       Kind = "renewed"   // a new validity period (off unless ESIMFLOW_NOTIFY_RENEWALS)
)

// Kinds lists every kind, for checks and the CLI.
var Kinds = []Kind{Activation, LowData, DataExhausted, ValidityLow, ToppedUp, Renewed}

// Fallback is the locale every lookup ends in.
const Fallback = "en"

// Data is what a message is about.
type Data struct {
	Name         string // the customer's name; may be empty
	ICCID        string
	OrderNo      string
	Threshold    int   // low data: the percent crossed
	UsedBytes    int64 // 0 with TotalBytes 0: unknown
	TotalBytes   int64
	RemainDays   int64 // validity low
	UsagePercent float64
	ExpiresAt    time.Time // renewed: the end of the new period; zero when unknown
	// What a traveller needs to install (activation), when the order or the
	// provider supplied it: the LPA activation code, the provider's QR image
	// and install page. QRInline says the email embeds the QR code (as
	// cid:QRContentID).
	ActivationCode string
	QRCodeURL      string
	InstallURL     string
	QRInline       bool
	// TopUpURL is the reseller's top-up link (ESIMFLOW_TOPUP_URL), filled
	// for this eSIM; empty when none.
	TopUpURL string
}

// QRContentID is the Content-ID of the QR code image an activation email
// embeds.
const QRContentID = "qr.esimflow"

// IOSInstallPrefix starts an iOS direct-install link (iOS 17.4 and later):
// the LPA activation code follows, query-escaped.
const IOSInstallPrefix = "https://esimsetup.apple.com/esim_qrcode_provisioning?carddata="

// View is what templates see: Data made presentable for one locale.
type View struct {
	Name       string // may be empty: templates greet without it
	ICCIDTail  string // the last four digits, which customers can match on their device
	OrderNo    string
	Threshold  int
	Used       string // "820 MB", "1.5 GB" (locale decimal mark); empty when unknown
	Total      string
	Left       string
	RemainDays int64
	Expires    string // "2024-02-14": the end of a renewed period; empty when unknown
	Locale     string
	// ActivationCode is the LPA string to type in; IOSInstallURL the
	// one-tap install link made from it; InstallURL the provider's install
	// page. Each empty when unknown.
	ActivationCode string
	IOSInstallURL  string
	InstallURL     string
	// QRImage is the QR code's image source: the embedded image
	// (cid:…) in email, else the provider's image URL; empty when none.
	QRImage  htmltemplate.URL
	TopUpURL string // the reseller's top-up link; empty when none
}

// Rendered is one message, ready for a channel.
type Rendered struct {
	Locale  string // the locale whose template was used
	Subject string
	Text    string
	HTML    string // empty when the template has none
	SMS     string // the text when the template has no sms form
	// Vars are the view's values by name, for channels that send templates
	// of their own (WhatsApp): name, iccid, order, threshold, used, total,
	// left, days, expires, activation_code, install_url, topup_url.
	Vars map[string]string
}

//go:embed templates
var builtin embed.FS

type entry struct {
	text *texttemplate.Template
	html *htmltemplate.Template // nil without an "html" definition
	sms  bool
	from string // where it was read, for errors
}

// Set is every template, parsed. It is safe for concurrent use.
type Set struct {
	byLocale map[string]map[string]*entry
}

var (
	nameRE = regexp.MustCompile(`^(activation|low_data|low_data_[0-9]{1,3}|data_exhausted|validity_low|topped_up|renewed)\.tmpl$`)
)

// New parses the built-in templates and, when dir is not empty, the ones in
// dir over them.
func New(dir string) (*Set, error) {
	s := &Set{byLocale: map[string]map[string]*entry{}}
	sub, err := fs.Sub(builtin, "templates")
	if err != nil {
		return nil, err
	}
	if err := s.load(sub, "built-in"); err != nil {
		return nil, err
	}
	if dir != "" {
		if _, err := os.Stat(dir); err != nil {
			return nil, fmt.Errorf("templates: %w", err)
		}
		if err := s.load(os.DirFS(dir), dir); err != nil {
			return nil, err
		}
	}
	if err := s.check(); err != nil {
		return nil, err
	}
	return s, nil
}

// load reads <locale>/<name>.tmpl files; anything else in the tree is an error,
// so a misnamed override is noticed.
func (s *Set) load(fsys fs.FS, origin string) error {
	return fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return fmt.Errorf("templates %s: %w", origin, err)
		}
		if p == "." {
			return nil
		}
		locale, name := path.Split(p)
		locale = strings.TrimSuffix(locale, "/")
		switch {
		case d.IsDir() && locale == "" && localetag.Canonical(name):
			return nil
		case !d.IsDir() && localetag.Canonical(locale) && !strings.Contains(locale, "/") && nameRE.MatchString(name):
		default:
			return fmt.Errorf("templates %s: %s: want <locale>/<kind>.tmpl with a lower-case locale (en, de, pt-br) and a kind of %v or low_data_<threshold>", origin, p, Kinds)
		}
		src, err := fs.ReadFile(fsys, p)
		if err != nil {
			return fmt.Errorf("templates %s: %w", origin, err)
		}
		e, err := parse(string(src), path.Join(origin, p))
		if err != nil {
			return err
		}
		if s.byLocale[locale] == nil {
			s.byLocale[locale] = map[string]*entry{}
		}
		s.byLocale[locale][strings.TrimSuffix(name, ".tmpl")] = e
		return nil
	})
}

func parse(src, from string) (*entry, error) {
	tt, err := texttemplate.New(from).Option("missingkey=error").Parse(src)
	if err != nil {
		return nil, fmt.Errorf("template %s: %w", from, err)
	}
	for _, need := range []string{"subject", "text"} {
		if tt.Lookup(need) == nil {
			return nil, fmt.Errorf("template %s: no {{define %q}}", from, need)
		}
	}
	e := &entry{text: tt, sms: tt.Lookup("sms") != nil, from: from}
	if tt.Lookup("html") != nil {
		// The same source, parsed for HTML: only "html" runs through it, so
		// only it is escaped contextually.
		if e.html, err = htmltemplate.New(from).Option("missingkey=error").Parse(src); err != nil {
			return nil, fmt.Errorf("template %s: %w", from, err)
		}
	}
	return e, nil
}

// check renders every template once with sample data, and makes sure English
// has every kind.
func (s *Set) check() error {
	var errs []error
	for _, k := range Kinds {
		if s.byLocale[Fallback][string(k)] == nil {
			errs = append(errs, fmt.Errorf("templates: %s/%s.tmpl is missing", Fallback, k))
		}
	}
	sample := Data{Name: "Ana", ICCID: "8901234567890123456", Threshold: 80, UsedBytes: 800 << 20, TotalBytes: 1 << 30, RemainDays: 3,
		ActivationCode: "LPA:1$smdp.example$K2-SAMPLE", InstallURL: "https://provider.example/i/1", QRInline: true,
		TopUpURL: "https://shop.example/topup?iccid=8901234567890123456"}
	for locale, names := range s.byLocale {
		for _, e := range names {
			if _, err := e.render(locale, view(sample, locale)); err != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// Locales lists the locales that have templates, sorted.
func (s *Set) Locales() []string {
	out := make([]string, 0, len(s.byLocale))
	for l := range s.byLocale {
		out = append(out, l)
	}
	slices.Sort(out)
	return out
}

// Render renders kind in the best locale available for locale. threshold
// selects a low_data_<threshold> template when there is one.
func (s *Set) Render(kind Kind, locale string, d Data) (Rendered, error) {
	for _, loc := range Chain(locale) {
		names := s.byLocale[loc]
		if names == nil {
			continue
		}
		for _, name := range candidates(kind, d.Threshold) {
			if e := names[name]; e != nil {
				return e.render(loc, view(d, loc))
			}
		}
	}
	return Rendered{}, fmt.Errorf("no template for %s in %q or %s", kind, locale, Fallback)
}

func candidates(kind Kind, threshold int) []string {
	if kind == LowData && threshold > 0 {
		return []string{string(kind) + "_" + strconv.Itoa(threshold), string(kind)}
	}
	return []string{string(kind)}
}

// Chain is the lookup order for a locale: "pt_BR" → pt-br, pt, en.
func Chain(locale string) []string {
	loc := localetag.Normalize(strings.TrimSpace(locale))
	var out []string
	add := func(l string) {
		if l != "" && localetag.Canonical(l) && (len(out) == 0 || out[len(out)-1] != l) {
			out = append(out, l)
		}
	}
	add(loc)
	base, _, _ := strings.Cut(loc, "-")
	add(base)
	add(Fallback)
	return out
}

func (e *entry) render(locale string, v View) (Rendered, error) {
	exec := func(name string) (string, error) {
		var b bytes.Buffer
		if err := e.text.ExecuteTemplate(&b, name, v); err != nil {
			return "", fmt.Errorf("template %s: %w", e.from, err)
		}
		return b.String(), nil
	}
	r := Rendered{Locale: locale, Vars: v.vars()}
	subject, err := exec("subject")
	if err != nil {
		return Rendered{}, err
	}
	r.Subject = strings.Join(strings.Fields(subject), " ")
	text, err := exec("text")
	if err != nil {
		return Rendered{}, err
	}
	r.Text = tidy(text)
	r.SMS = r.Text
	if e.sms {
		sms, err := exec("sms")
		if err != nil {
			return Rendered{}, err
		}
		r.SMS = strings.Join(strings.Fields(sms), " ")
	}
	if e.html != nil {
		var b bytes.Buffer
		if err := e.html.ExecuteTemplate(&b, "html", v); err != nil {
			return Rendered{}, fmt.Errorf("template %s: %w", e.from, err)
		}
		r.HTML = strings.TrimSpace(b.String())
	}
	return r, nil
}

// tidy trims each line's trailing blanks and the text's leading and trailing
// blank lines, so templates may be laid out for reading.
func tidy(s string) string {
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " \t\r")
	}
	return strings.Trim(strings.Join(lines, "\n"), "\n")
}

func view(d Data, locale string) View {
	v := View{Name: strings.TrimSpace(d.Name), ICCIDTail: lastDigits(d.ICCID, 4), OrderNo: d.OrderNo,
		Threshold: d.Threshold, RemainDays: d.RemainDays, Locale: locale}
	if d.TotalBytes > 0 {
		v.Used, v.Total = Bytes(d.UsedBytes, locale), Bytes(d.TotalBytes, locale)
		v.Left = Bytes(max(d.TotalBytes-d.UsedBytes, 0), locale)
	}
	if !d.ExpiresAt.IsZero() {
		v.Expires = d.ExpiresAt.UTC().Format(time.DateOnly)
	}
	v.ActivationCode, v.InstallURL, v.TopUpURL = strings.TrimSpace(d.ActivationCode), d.InstallURL, d.TopUpURL
	if v.ActivationCode != "" {
		v.IOSInstallURL = IOSInstallPrefix + url.QueryEscape(v.ActivationCode)
	}
	switch {
	case d.QRInline && v.ActivationCode != "":
		v.QRImage = htmltemplate.URL("cid:" + QRContentID)
	case d.QRCodeURL != "":
		// Only the provider's http(s) image; html/template would defuse
		// another scheme, but a broken image helps no one.
		if u, err := url.Parse(d.QRCodeURL); err == nil && (u.Scheme == "https" || u.Scheme == "http") {
			v.QRImage = htmltemplate.URL(d.QRCodeURL)
		}
	}
	return v
}

// vars names the view's values for templates kept elsewhere.
func (v View) vars() map[string]string {
	out := map[string]string{"name": v.Name, "iccid": v.ICCIDTail, "order": v.OrderNo, "used": v.Used, "total": v.Total,
		"left": v.Left, "expires": v.Expires, "activation_code": v.ActivationCode, "topup_url": v.TopUpURL,
		"install_url": orElse(v.IOSInstallURL, v.InstallURL)}
	if v.Threshold > 0 {
		out["threshold"] = strconv.Itoa(v.Threshold)
	}
	if v.RemainDays > 0 {
		out["days"] = strconv.FormatInt(v.RemainDays, 10)
	}
	return out
}

func orElse(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

func lastDigits(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}
