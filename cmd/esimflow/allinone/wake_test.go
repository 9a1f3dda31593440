package allinone_test

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/esimflow/esimflow/cmd/esimflow/allinone/allinonetest"
	"github.com/esimflow/esimflow/notifier/channel/smtptest"
	"github.com/esimflow/esimflow/shared/poll"
	"github.com/esimflow/esimflow/shared/store"
)

// wakeEnv is an all-in-one mailing through srv whose retries of a waiting
// message come minutes apart (the 15-minute contact wait over three
// deliveries: 225 s first): a message out within the poll budget went out
// on a wake-up.
func wakeEnv(t testing.TB, srv *smtptest.Server) map[string]string {
	return map[string]string{"ESIMFLOW_DATA_DIR": t.TempDir(), "ESIMFLOW_SMTP_URL": "smtp://" + srv.Addr,
		"ESIMFLOW_EMAIL_FROM": "Shop <care@shop.example>", "ESIMFLOW_CONTACT_WAIT": "15m", "ESIMFLOW_MAX_DELIVER": "3"}
}

// waiting reports whether the intent id's latest log entry says it waits.
func waiting(t testing.TB, api, iccid, id string) bool {
	var n struct{ Notifications []store.Notification }
	getJSON(t, api+"/v1/notifications?iccid="+iccid, &n)
	for i := len(n.Notifications) - 1; i >= 0; i-- {
		if e := n.Notifications[i]; e.ID == id {
			return e.Status == store.NotificationWaiting
		}
	}
	return false
}

func mailed(srv *smtptest.Server, id string) bool {
	return slices.ContainsFunc(srv.Mail(), func(m smtptest.Mail) bool { return m.Header.Get("X-Esimflow-Intent") == id })
}

// TestShuffledOrdersReachEveryCustomer is issue 16, case 1 on the
// all-in-one: 15 eSIMs whose activations come before their orders' links
// (each contact registered under the order's transactionId) wait; once the
// ORDER_STATUS events are merged every customer has the message, long
// before any retry.
func TestShuffledOrdersReachEveryCustomer(t *testing.T) {
	srv := smtptest.Start(t, smtptest.Options{})
	sys := allinonetest.Start(t, wakeEnv(t, srv))
	bodies, iccids := lifecycle(3, 5)
	var activations, orders []string
	for _, b := range bodies {
		switch {
		case strings.Contains(b, `"ORDER_STATUS"`):
			orders = append(orders, b)
		case strings.Contains(b, `"PROFILE_STATUS"`):
			activations = append(activations, b)
		}
	}
	for o := range 3 {
		allinonetest.PutContact(t, sys.API, fmt.Sprintf("tx-ORD%04d", o), fmt.Sprintf(`{"email":"customer%d@example.com"}`, o))
	}
	postAll(t, sys.Hook, activations)
	poll.Until(t, "every activation waiting for its order's link", func() bool {
		for _, iccid := range iccids {
			if !waiting(t, sys.API, iccid, activationID(iccid)) {
				return false
			}
		}
		return true
	})
	postAll(t, sys.Hook, orders)
	poll.Until(t, "every customer's activation mail", func() bool {
		for _, iccid := range iccids {
			if !mailed(srv, activationID(iccid)) {
				return false
			}
		}
		return true
	})
	if n := len(srv.Mail()); n != len(iccids) {
		t.Errorf("%d mails for %d eSIMs", n, len(iccids))
	}
}

// BenchmarkWakeLatency measures, on the all-in-one, the time from storing
// the last thing a waiting message needs to its send: the contact
// registered (contact_last), or the order link posted to ingest (link_last:
// ingest, the processor's merge and the wake-up included). The goal is a
// p99 of 2 s or less (issue 16).
func BenchmarkWakeLatency(b *testing.B) {
	for _, last := range []string{"contact_last", "link_last"} {
		b.Run(last, func(b *testing.B) {
			srv := smtptest.Start(b, smtptest.Options{})
			sys := allinonetest.Start(b, wakeEnv(b, srv))
			var lat []time.Duration
			for i := range b.N {
				orderNo, iccid := fmt.Sprintf("ORDB%05d", i), fmt.Sprintf("8902%09d", i)
				tx := "tx-" + orderNo
				if last == "link_last" {
					allinonetest.PutContact(b, sys.API, tx, `{"email":"bench@example.com"}`)
				}
				postAll(b, sys.Hook, []string{mustJSON(map[string]any{"eventType": "PROFILE_STATUS", "iccid": iccid, "orderNo": orderNo,
					"transactionId": map[bool]string{true: tx}[last == "contact_last"],
					"currentStatus": "ACTIVATED", "timestamp": time.Now().UTC().Format(time.RFC3339)})})
				id := "activation:" + iccid + ".o" + orderNo
				poll.Until(b, "the activation waiting", func() bool { return waiting(b, sys.API, iccid, id) }, poll.Every(time.Millisecond))
				t0 := time.Now()
				if last == "contact_last" {
					allinonetest.PutContact(b, sys.API, tx, `{"email":"bench@example.com"}`)
				} else {
					postAll(b, sys.Hook, []string{mustJSON(map[string]any{"eventType": "ORDER_STATUS", "orderNo": orderNo, "transactionId": tx,
						"status": "GOT_RESOURCE", "timestamp": time.Now().UTC().Format(time.RFC3339), "profiles": []map[string]any{{"iccid": iccid}}})})
				}
				poll.Until(b, "the mail of "+id, func() bool { return mailed(srv, id) }, poll.Every(time.Millisecond))
				lat = append(lat, time.Since(t0))
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Milliseconds()), "p50_ms")
			b.ReportMetric(float64(lat[min(len(lat)-1, len(lat)*99/100)].Milliseconds()), "p99_ms")
			b.ReportMetric(float64(lat[len(lat)-1].Milliseconds()), "max_ms")
		})
	}
}
