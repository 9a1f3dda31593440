package console_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/esimflow/esimflow/cmd/esimflow/allinone/allinonetest"
	"github.com/esimflow/esimflow/notifier/channel/smtptest"
	"github.com/esimflow/esimflow/processor"
	"github.com/esimflow/esimflow/shared/natstest"
	"github.com/esimflow/esimflow/shared/poll"
	"github.com/esimflow/esimflow/shared/stream"
	"github.com/esimflow/esimflow/shared/testns"
	"github.com/nats-io/nats.go/jetstream"
)

// chromium finds a Chromium or Chrome binary: ESIMFLOW_CHROMIUM, else the
// usual names on PATH.
func chromium() string {
	if p := os.Getenv("ESIMFLOW_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// screenshots is where the browser test saves a PNG of each page:
// ESIMFLOW_CONSOLE_SCREENSHOTS (kept), else the test's temporary directory.
func screenshots(t *testing.T) string {
	if d := os.Getenv("ESIMFLOW_CONSOLE_SCREENSHOTS"); d != "" {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		return d
	}
	return t.TempDir()
}

// TestBrowserFixUndeliveredMessage drives the console in headless Chromium
// against a running all-in-one: an eSIM's lifecycle arrives with no
// customer contact, so its activation email waits and is dead-lettered; the
// operator logs in, finds the eSIM and its timeline, finds the undelivered
// message, adds the contact and re-drives it, and sees it sent.
func TestBrowserFixUndeliveredMessage(t *testing.T) {
	bin := chromium()
	if bin == "" {
		t.Skip("no chromium binary on PATH (apt-get install -y chromium, or set ESIMFLOW_CHROMIUM): the browser test needs one")
	}
	if testing.Short() {
		t.Skip("a browser test: not with -short")
	}
	const tok, iccid, orderNo, tx = "console-browser-token", "8949000000000000017", "ORD-B17", "tx-b17"
	mail := smtptest.Start(t, smtptest.Options{Security: smtptest.Plain})
	srv := natstest.Start(t)
	ns := testns.New(t)
	srv.RemoveNamespace(t, ns)
	sys := allinonetest.Start(t, map[string]string{
		"ESIMFLOW_NATS_URL":     srv.URL,
		"ESIMFLOW_NAMESPACE":    ns,
		"ESIMFLOW_ADMIN_TOKEN":  tok,
		"ESIMFLOW_SMTP_URL":     mail.URL(),
		"ESIMFLOW_EMAIL_FROM":   "Shop <care@shop.example>",
		"ESIMFLOW_CONTACT_WAIT": "2s",
	})

	// A re-drive inside ESIM_NOTIFY's duplicate window (2 min) is refused:
	// JetStream would drop the copy. A message waits ESIMFLOW_CONTACT_WAIT
	// (15 min by default) before it is dead-lettered for want of a contact,
	// far outside the window; this test waits 2 s, so it shortens the window
	// rather than wait two minutes.
	shortenDuplicateWindow(t, srv, stream.NewNames(ns).Stream(stream.Notify))

	// The provider's story of one eSIM: ordered, activated, half used.
	at := func(m int) string { return time.Date(2026, 11, 1, 8, m, 0, 0, time.UTC).Format(time.RFC3339) }
	for _, body := range []string{
		fmt.Sprintf(`{"eventType":"ORDER_STATUS","orderNo":%q,"transactionId":%q,"status":"GOT_RESOURCE","timestamp":%q,"profiles":[{"iccid":%q,"esimTranNo":"E17","status":"GOT_RESOURCE"}]}`, orderNo, tx, at(0), iccid),
		fmt.Sprintf(`{"eventType":"PROFILE_STATUS","iccid":%q,"orderNo":%q,"previousStatus":"GOT_RESOURCE","currentStatus":"ACTIVATED","timestamp":%q}`, iccid, orderNo, at(1)),
		fmt.Sprintf(`{"eventType":"DATA_USAGE","iccid":%q,"usedVolume":536870912,"totalVolume":1073741824,"usagePercent":50,"timestamp":%q}`, iccid, at(2)),
	} {
		resp, err := http.Post(sys.Hook, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("webhook: %d", resp.StatusCode)
		}
	}
	poll.Until(t, "the activation dead-lettered for want of a contact", func() bool {
		return len(notifyDeadLetters(t, sys.API, tok)) > 0
	})

	dir := screenshots(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(bin), chromedp.NoSandbox, chromedp.Headless,
		chromedp.Flag("disable-background-networking", true), chromedp.WindowSize(1024, 768))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	// The first action starts the browser, on a context without a deadline
	// (a deadline there would stop the browser); later steps get one each.
	if err := chromedp.Do(ctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	css := func(s string) chromedp.CSS { return chromedp.CSS(s) }
	// shot saves the page, and checks on the way what a screen reader needs:
	// a title, one h1, a name for every control.
	shot := func(name string) chromedp.Action[chromedp.Void] {
		return chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
			bad, err := chromedp.Evaluate[string](accessibility)(ctx, tg)
			if err != nil {
				return err
			}
			if bad != "" {
				t.Errorf("page %s: %s", name, bad)
			}
			png, err := chromedp.FullScreenshot(100)(ctx, tg)
			if err != nil {
				return err
			}
			return os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644)
		})
	}
	run := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		if err := chromedp.Do(sctx, steps...); err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		sctx, cancel := context.WithTimeout(ctx, time.Minute)
		defer cancel()
		s, err := chromedp.Run(sctx, chromedp.Text(css(sel)))
		if err != nil {
			t.Fatalf("read %s: %v", sel, err)
		}
		return s
	}

	base := sys.API + "/console/"
	run("log in",
		chromedp.Navigate(base),
		chromedp.WaitVisible(css(`#token`)),
		shot("login"),
		chromedp.SendKeys(css(`#token`), tok),
		chromedp.Submit(css(`#token`)),
		chromedp.WaitVisible(css(`#q`)),
	)
	run("search the ICCID",
		chromedp.SendKeys(css(`#q`), iccid),
		chromedp.Submit(css(`#q`)),
		chromedp.WaitVisible(css(`ol.timeline`)),
		shot("esim"),
	)
	story := text(`main`)
	for _, want := range []string{"ACTIVATED", "eSIM GOT_RESOURCE", "Order " + orderNo + " GOT_RESOURCE", "Message activation", "dead_lettered", "no contact", "Add the customer's contact and re-drive 1 undelivered message",
		"(raw body) · key", "arrived"} { // each state change's stored event

		if !strings.Contains(story, want) {
			t.Errorf("the eSIM's page lacks %q:\n%s", want, story)
		}
	}
	if a, b := strings.Index(story, "eSIM ACTIVATED"), strings.Index(story, "Message activation"); a < 0 || b < a {
		t.Errorf("the activation message does not follow the activation in the timeline:\n%s", story)
	}

	run("find the undelivered message",
		chromedp.Navigate(base+"undelivered"),
		chromedp.WaitVisible(css(`table`)),
		shot("undelivered"),
	)
	if list := text(`table`); !strings.Contains(list, iccid) || !strings.Contains(list, "activation") {
		t.Fatalf("the undelivered list lacks the activation of %s:\n%s", iccid, list)
	}
	run("fix the contact and re-drive",
		chromedp.Click(css(`a[href^="/console/contacts/`+tx+`?redrive="]`)),
		chromedp.WaitVisible(css(`#email`)),
		chromedp.SendKeys(css(`#email`), "ana@example.com"),
		chromedp.SendKeys(css(`#name`), "Ana"),
		shot("contact"),
		chromedp.Submit(css(`#email`)),
		chromedp.WaitVisible(css(`ul[role=status]`)),
		shot("redriven"),
	)
	if res := text(`ul[role=status]`); !strings.Contains(res, "contact "+tx+" saved") || !strings.Contains(res, "re-driven") {
		t.Fatalf("result: %s", res)
	}
	poll.Until(t, "the activation email", func() bool {
		for _, m := range mail.Mail() {
			if len(m.To) == 1 && m.To[0] == "ana@example.com" {
				return true
			}
		}
		return false
	})
	poll.Until(t, "the eSIM's page showing the message sent", func() bool {
		run("reload the eSIM", chromedp.Navigate(base+"esims/"+iccid), chromedp.WaitVisible(css(`ol.timeline`)))
		return strings.Contains(text(`ol.timeline`), "sent")
	}, poll.Every(200*time.Millisecond))
	run("the message's text on demand",
		shot("esim-sent"),
		chromedp.Click(css(`ol.timeline a[href^="/console/messages/activation:"]`)),
		chromedp.WaitVisible(css(`pre`)),
		shot("message"),
	)
	if m := text(`main`); !strings.Contains(m, "Your eSIM is active") || !strings.Contains(m, "ana@example.com") {
		t.Errorf("the message's text:\n%s", m)
	}
	run("the last webhook per provider", chromedp.Navigate(base+"health"), chromedp.WaitVisible(css(`.charts`)))
	if h := text(`main`); !strings.Contains(h, "esimaccess") || !strings.Contains(h, "receiving") {
		t.Errorf("the health page lacks the provider's last webhook:\n%s", h)
	}
	run("the story, told",
		chromedp.Navigate(base+"dlq"), chromedp.WaitVisible(css(`h1`)), shot("dead-letters"),
		chromedp.Navigate(base+"health"), chromedp.WaitVisible(css(`.charts`)), shot("health"),
		// A phone's width: the same pages, one column, tables scroll.
		chromedp.EmulateViewport(390, 844),
		chromedp.Navigate(base+"esims/"+iccid), chromedp.WaitVisible(css(`ol.timeline`)), shot("esim-phone"),
	)
	// Wide tables scroll inside their region; the page itself never does.
	fits, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.documentElement.scrollWidth <= window.innerWidth`))
	if err != nil || !fits {
		t.Errorf("the eSIM's page is wider than a phone (%v)", err)
	}
	t.Logf("screenshots in %s", dir)
}

func shortenDuplicateWindow(t *testing.T, srv *natstest.Server, name string) {
	t.Helper()
	js, err := jetstream.New(srv.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	s, err := js.Stream(ctx, name)
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.CachedInfo().Config
	cfg.Duplicates = time.Second
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		t.Fatalf("shorten the duplicate window of %s: %v", name, err)
	}
}

// accessibility is a script that names what a page lacks for a screen
// reader: a title, exactly one h1, a label (or aria-label) for every visible
// control, a lang attribute; "" when nothing.
const accessibility = `(() => {
	const bad = [];
	if (!document.title) bad.push("no title");
	if (!document.documentElement.lang) bad.push("no lang");
	const h1 = document.querySelectorAll("h1").length;
	if (h1 !== 1) bad.push(h1 + " h1 elements");
	for (const e of document.querySelectorAll("input:not([type=hidden]), select, textarea")) {
		if (!(e.labels && e.labels.length) && !e.getAttribute("aria-label")) bad.push("unlabelled " + e.outerHTML);
	}
	for (const b of document.querySelectorAll("button, a")) {
		if (!b.textContent.trim() && !b.getAttribute("aria-label")) bad.push("nameless " + b.outerHTML);
	}
	return bad.join("; ");
})()`

// notifyDeadLetters lists the dead-lettered messages through the API.
func notifyDeadLetters(t *testing.T, api, tok string) []processor.DeadLetter {
	t.Helper()
	req, _ := http.NewRequest("GET", api+"/v1/dlq?source=notify", nil)
	req.Header.Set("Authorization", "Bearer "+tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		DeadLetters []processor.DeadLetter `json:"deadLetters"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out.DeadLetters
}
