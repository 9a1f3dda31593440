package console_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/esimflow/esimflow/shared/store"
)

const token = "s3cret-token"

// req sends one request as a same-origin browser would (a form post carries
// Sec-Fetch-Site: same-origin); header entries override or add.
func (r *rig) req(method, path string, form url.Values, cookie string, header map[string]string) *httptest.ResponseRecorder {
	var body *strings.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	} else {
		body = strings.NewReader("")
	}
	q := httptest.NewRequest(method, "http://127.0.0.1:8081"+path, body)
	q.RemoteAddr = "127.0.0.1:50000"
	if form != nil {
		q.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if method == http.MethodPost {
		q.Header.Set("Sec-Fetch-Site", "same-origin")
		q.Header.Set("Origin", "http://127.0.0.1:8081")
	}
	if cookie != "" {
		q.AddCookie(&http.Cookie{Name: "esimflow_console", Value: cookie})
	}
	for k, v := range header {
		if v == "" {
			q.Header.Del(k)
		} else {
			q.Header.Set(k, v)
		}
	}
	w := httptest.NewRecorder()
	r.h.ServeHTTP(w, q)
	return w
}

func (r *rig) get(t *testing.T, path, cookie string) string {
	t.Helper()
	w := r.req("GET", path, nil, cookie, nil)
	if w.Code != 200 {
		t.Fatalf("GET %s: %d %s", path, w.Code, w.Body)
	}
	return w.Body.String()
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([0-9a-f]+)"`)

func csrfOf(t *testing.T, page string) string {
	t.Helper()
	m := csrfRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no csrf token in the page:\n%s", page)
	}
	return m[1]
}

// TestLogin: the right token sets an HttpOnly, SameSite=Strict cookie scoped
// to the console and leads where the operator was going; a wrong one is
// refused with the reason; the redirect never leaves the console.
func TestLogin(t *testing.T) {
	r := newRig(t, token, 10)
	w := r.req("GET", "/console/undelivered", nil, "", nil)
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/console/login?next=%2Fconsole%2Fundelivered" {
		t.Fatalf("no cookie: %d %s", w.Code, w.Header().Get("Location"))
	}
	if page := r.get(t, "/console/login?next=/console/undelivered", ""); !strings.Contains(page, `<label for="token">`) || !strings.Contains(page, `value="/console/undelivered"`) {
		t.Fatalf("login page:\n%s", page)
	}
	w = r.req("POST", "/console/login", url.Values{"token": {"nope"}, "next": {"/console/undelivered"}}, "", nil)
	if w.Code != http.StatusUnauthorized || !strings.Contains(w.Body.String(), "not the admin token") {
		t.Fatalf("wrong token: %d", w.Code)
	}
	w = r.req("POST", "/console/login", url.Values{"token": {token}, "next": {"/console/undelivered"}}, "", nil)
	if w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/console/undelivered" {
		t.Fatalf("login: %d %s", w.Code, w.Header().Get("Location"))
	}
	ck := w.Result().Cookies()
	if len(ck) != 1 || ck[0].Value != token || !ck[0].HttpOnly || ck[0].SameSite != http.SameSiteStrictMode || ck[0].Path != "/console/" || ck[0].Secure {
		t.Fatalf("cookie: %+v", ck)
	}
	for _, next := range []string{"//evil.example/", "https://evil.example/", "/v1/dlq", "/console/\\evil"} {
		w = r.req("POST", "/console/login", url.Values{"token": {token}, "next": {next}}, "", nil)
		if loc := w.Header().Get("Location"); loc != "/console/" {
			t.Errorf("next %q: redirected to %q", next, loc)
		}
	}
	w = r.req("POST", "/console/logout", url.Values{}, token, nil)
	if ck := w.Result().Cookies(); w.Code != http.StatusSeeOther || len(ck) != 1 || ck[0].MaxAge >= 0 {
		t.Fatalf("logout: %d %+v", w.Code, ck)
	}
}

// TestPages renders every page against the fake API: the eSIM's state, its
// timeline in order, the undelivered message with its reason, the dead
// letters, health.
func TestPages(t *testing.T) {
	r := newRig(t, token, 10)
	esim := "8901000000000000001"
	for _, tt := range []struct {
		path string
		want []string
	}{
		{"/console/", []string{`<label for="q">`, `role="search"`}},
		{"/console/search?q=ORD1", []string{"Order ORD1", "/console/esims/" + esim}},
		{"/console/search?q=nothing-here", []string{"No eSIM (ICCID), order number"}},
		{"/console/esims/" + esim, []string{`<a class="hint" href="/console/messages/activation:` + esim + `?iccid=` + esim + `">text</a>`, "IN_USE", `<meter id="usage"`, "78.1 %", "3 of 30 DAY left", "eSIM GOT_RESOURCE", "Message activation", "dead_lettered", "no contact for transaction tx-1", "×100", "Add the customer's contact and re-drive 1 undelivered message", "/console/contacts/tx-1?iccid=8901000000000000001&amp;redrive=2"}},
		{"/console/events/7", []string{"Stored event 7", "&#34;eventType&#34;: &#34;PROFILE_STATUS&#34;", "<dd>airalo <span class=\"muted\">(adapter airalo/1)</span></dd>", "a:airalo:123", "<dt>Source</dt><dd>poll</dd>"}},
		{"/console/undelivered", []string{"no contact for transaction tx-1", `name="seq" value="2"`, "/console/contacts/tx-1?redrive=2", "1 more are being retried",
			"Waiting or being retried", "100 shown of 101", `<span class="badge">waiting</span>`, "no contact for transactionId &#34;tx-2&#34;", `href="/console/contacts/tx-2?iccid=8901000000000000002">Edit contact`,
			`<span class="badge bad">failed</span> <span class="hint">attempt 1</span>`, "smtp: 451 try later"}},
		{"/console/undelivered?channel=email", []string{"100 shown of 100"}},
		{"/console/undelivered?kind=activation", []string{"1 shown of 1", "tx-2"}},
		{"/console/messages/activation:" + esim + "?iccid=" + esim, []string{"Your eSIM is active", "ending in 0001 is now active &lt;and connected&gt;", "no channel: it waits for a contact", "HTML of the email"}},
		{"/console/undelivered?kind=low_data", []string{"Nothing undelivered matches these filters"}},
		{"/console/contacts/tx-1?redrive=2&iccid=" + esim, []string{"New contact", `name="seq" value="2"`, "Save and re-drive 1 message"}},
		{"/console/dlq", []string{"decode: no status", `href="/console/events/7"`, "Purge these"}},
		{"/console/dlq/2", []string{"Dead letter 2", "activation:" + esim}},
		{"/console/dlq/1/delete", []string{"Delete dead letter 1?", "Cancel"}},
		{"/console/purge?source=events", []string{"Purge every dead-lettered event?", "Purge 1 dead letters"}},
		{"/console/health", []string{"ready", "processor", `<meta http-equiv="refresh"`, "events processed / min"}},
	} {
		t.Run(tt.path, func(t *testing.T) {
			page := r.get(t, tt.path, token)
			for _, w := range tt.want {
				if !strings.Contains(page, w) {
					t.Errorf("missing %q", w)
				}
			}
		})
	}
	if w := r.req("GET", "/console/search?q="+esim, nil, token, nil); w.Code != http.StatusSeeOther || w.Header().Get("Location") != "/console/esims/"+esim {
		t.Errorf("an ICCID goes straight to its page: %d %s", w.Code, w.Header().Get("Location"))
	}
	if w := r.req("GET", "/console/esims/123", nil, token, nil); w.Code != 404 {
		t.Errorf("unknown eSIM: %d", w.Code)
	}
	if w := r.req("GET", "/console/messages/low_data:1:80?iccid="+esim, nil, token, nil); w.Code != 404 {
		t.Errorf("text of an unknown message: %d", w.Code)
	}
	if w := r.req("GET", "/console/messages/low_data:1:80", nil, token, nil); w.Code != 400 {
		t.Errorf("text without an iccid: %d", w.Code)
	}
	if w := r.req("GET", "/console/undelivered?age=forever", nil, token, nil); w.Code != 400 {
		t.Errorf("a bad age: %d", w.Code)
	}
}

// TestTimelineOrder: state changes oldest first, a message after the state
// change that caused it, the order's placement before the first change.
func TestTimelineOrder(t *testing.T) {
	r := newRig(t, token, 4)
	page := r.get(t, "/console/esims/8901000000000000001", token)
	order := []string{"Order ORD1 GOT_RESOURCE", "eSIM GOT_RESOURCE", "eSIM ACTIVATED", "eSIM IN_USE", "eSIM SUSPENDED", "Message low_data", "Message activation"}
	at := 0
	for _, s := range order {
		i := strings.Index(page[at:], s)
		if i < 0 {
			t.Fatalf("%q not after position %d", s, at)
		}
		at += i
	}
}

// TestFixContactAndRedrive: the undelivered message's contact is added and
// its dead letter re-driven in one form post; re-driving several at once.
func TestFixContactAndRedrive(t *testing.T) {
	r := newRig(t, token, 4)
	form := r.get(t, "/console/contacts/tx-1?redrive=2", token)
	w := r.req("POST", "/console/contacts/tx-1", url.Values{"csrf": {csrfOf(t, form)}, "seq": {"2"}, "email": {"not-an-address"}}, token, nil)
	if w.Code != 200 || !strings.Contains(w.Body.String(), "email: want an address") || len(r.fake.redriven) != 0 {
		t.Fatalf("invalid contact: %d %v\n%s", w.Code, r.fake.redriven, w.Body)
	}
	w = r.req("POST", "/console/contacts/tx-1", url.Values{"csrf": {csrfOf(t, form)}, "seq": {"2"}, "email": {"ana@example.com"}, "name": {"Ana"}}, token, nil)
	if w.Code != 200 || !strings.Contains(w.Body.String(), "dead letter 2 re-driven") || r.fake.contacts["tx-1"].Email != "ana@example.com" {
		t.Fatalf("save and re-drive: %d %v\n%s", w.Code, r.fake.redriven, w.Body)
	}
	if page := r.get(t, "/console/search?q=ana@example.com", token); !strings.Contains(page, "Contact tx-1") {
		t.Errorf("search by email:\n%s", page)
	}
	w = r.req("POST", "/console/redrive", url.Values{"csrf": {csrfOf(t, form)}, "seq": {"1", "99"}}, token, nil)
	if body := w.Body.String(); w.Code != 200 || !strings.Contains(body, "dead letter 1 re-driven") || !strings.Contains(body, "dead letter 99: dead letter not found") {
		t.Fatalf("re-drive many: %d\n%s", w.Code, body)
	}
}

// TestDeleteAndPurgeAskFirst: the GET shows a confirmation and changes
// nothing; the POST from it does the work.
func TestDeleteAndPurgeAskFirst(t *testing.T) {
	r := newRig(t, token, 4)
	page := r.get(t, "/console/dlq/1/delete", token)
	if len(r.fake.dlq) != 2 {
		t.Fatal("the confirmation page deleted")
	}
	w := r.req("POST", "/console/dlq/1/delete", url.Values{"csrf": {csrfOf(t, page)}}, token, nil)
	if w.Code != 200 || len(r.fake.dlq) != 1 {
		t.Fatalf("delete: %d %d left", w.Code, len(r.fake.dlq))
	}
	page = r.get(t, "/console/purge", token)
	w = r.req("POST", "/console/purge", url.Values{"csrf": {csrfOf(t, page)}, "source": {""}}, token, nil)
	if w.Code != 200 || len(r.fake.dlq) != 0 || !strings.Contains(w.Body.String(), "1 dead letters purged") {
		t.Fatalf("purge: %d %d left\n%s", w.Code, len(r.fake.dlq), w.Body)
	}
}

// TestOpenWithoutToken: with no token configured the console opens, says so
// on every page, and still wants the CSRF token on actions.
func TestOpenWithoutToken(t *testing.T) {
	r := newRig(t, "", 4)
	page := r.get(t, "/console/undelivered", "")
	if !strings.Contains(page, "No admin token is configured") {
		t.Fatal("the page does not say it is open")
	}
	if w := r.req("GET", "/console/login", nil, "", nil); w.Code != http.StatusSeeOther {
		t.Errorf("login without a token: %d", w.Code)
	}
	if w := r.req("POST", "/console/redrive", url.Values{"seq": {"2"}}, "", nil); w.Code != http.StatusForbidden || len(r.fake.redriven) != 0 {
		t.Errorf("action without the CSRF token: %d", w.Code)
	}
	if w := r.req("POST", "/console/redrive", url.Values{"seq": {"2"}, "csrf": {csrfOf(t, page)}}, "", nil); w.Code != 200 || len(r.fake.redriven) != 1 {
		t.Errorf("action with it: %d", w.Code)
	}
}

// TestTimelineEvents (issue 19): where the state records the event behind
// a transition or a usage report (store.Stored), the timeline shows its
// stream sequence with a link to the raw body, its dedupe key, arrival and
// the copies stored of it; where it does not, nothing of it.
func TestTimelineEvents(t *testing.T) {
	r := newRig(t, token, 4)
	r.fake.eventFields = map[int]map[string]any{ // newest first: 0 is SUSPENDED, 3 GOT_RESOURCE
		0: {"seq": 7, "dedupeKey": "e:5d41402abc4b2a76b9719d911017c592", "receivedAt": "2026-11-01T08:03:01Z", "copies": []int{9, 12}},
		2: {"seq": 5},
	}
	p := r.fake.profiles["8901000000000000001"]
	p.Usage = []store.UsageReport{{Used: 850 << 20, Total: 1 << 30, Percent: 83, At: t0.Add(10 * time.Minute),
		Stored: store.Stored{Seq: 8, DedupeKey: "e:7d793037a0760186574b0282f2f435e7", ReceivedAt: t0.Add(10*time.Minute + time.Second), Copies: []uint64{11}}}}
	r.fake.profiles[p.ICCID] = p
	page := r.get(t, "/console/esims/8901000000000000001", token)
	for _, want := range []string{
		`event <a href="/console/events/7">#7</a> (raw body) · key <span class="mono">e:5d41402abc4b2a76b9719d911017c592</span> · arrived <time datetime="2026-11-01T08:03:01Z">2026-11-01 08:03:01 UTC</time> · <span title="copies of this event stored again, merged as one">+2 duplicates</span>`,
		`event <a href="/console/events/5">#5</a> (raw body)</span>`,
		`<strong>Data used 83 %</strong>`,
		`event <a href="/console/events/8">#8</a> (raw body) · key <span class="mono">e:7d793037a0760186574b0282f2f435e7</span> · arrived <time datetime="2026-11-01T08:10:01Z">2026-11-01 08:10:01 UTC</time> · <span title="copies of this event stored again, merged as one">+1 duplicate</span>`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("missing %q", want)
		}
	}
	if n := strings.Count(page, "(raw body)"); n != 3 {
		t.Errorf("%d events linked, want the 3 with a sequence", n)
	}
}
