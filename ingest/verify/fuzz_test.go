package verify_test

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/esimflow/esimflow/ingest/verify"
)

// FuzzSignatureHeader throws arbitrary webhook-signature values (with the
// valid signature appended or not) and bodies at the Standard Webhooks
// check: it must never panic, and must pass exactly when the header, within
// its bounds, lists the valid signature as one of its entries.
func FuzzSignatureHeader(f *testing.F) {
	now := time.Unix(1_700_000_000, 0)
	sw, err := verify.NewStandardWebhooks([]string{swKey("fuzz-a"), swKey("fuzz-b")}, time.Minute, func() time.Time { return now })
	if err != nil {
		f.Fatal(err)
	}
	f.Add("", []byte(`{"a":1}`), true)
	f.Add("v1,AAAA v2,zzz", []byte(`{"a":1}`), true)
	f.Add(strings.Repeat("v1, ", 20), []byte(`{"a":1}`), true)
	f.Add("v1,", []byte{}, true)
	f.Add("v1,  v1,", []byte("x"), false)
	ts := strconv.FormatInt(now.Unix(), 10)
	f.Fuzz(func(t *testing.T, sigs string, body []byte, appendValid bool) {
		valid := sw.Sign("msg_fuzz", now, body)
		if appendValid {
			sigs += " " + valid
		}
		r := request(map[string]string{"webhook-id": "msg_fuzz", "webhook-timestamp": ts})
		r.Header["Webhook-Signature"] = []string{sigs}
		err := sw.Verify(verify.Request{HTTP: r, Body: body})
		want := len(body) > 0 && len(sigs) <= verify.MaxSignatureHeader &&
			strings.Count(sigs, " ") < verify.MaxSignatures && slices.Contains(strings.Split(sigs, " "), valid)
		if (err == nil) != want {
			t.Fatalf("header %q (%d bytes), body %d bytes: err %v, want pass=%v", sigs, len(sigs), len(body), err, want)
		}
		if err != nil && status(err) != 401 {
			t.Fatalf("refused with %d", status(err))
		}
	})
}
