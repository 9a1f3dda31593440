package binaries_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/esimflow/esimflow/cmd/esimflow/allinone/allinonetest"
	"github.com/esimflow/esimflow/notifier/channel/smtptest"
	"github.com/esimflow/esimflow/shared/natstest"
	"github.com/esimflow/esimflow/shared/poll"
	"github.com/esimflow/esimflow/shared/redistest"
	"github.com/esimflow/esimflow/shared/store"
	"github.com/esimflow/esimflow/shared/testns"
)

// BenchmarkWakeLatencyServices is the all-in-one's BenchmarkWakeLatency on
// the services as deployed: ingest, processor and notifier as processes,
// the state in Redis, one NATS between them, the wake-ups crossing it. It
// measures the time from storing the last thing a waiting activation needs
// (its contact at the notifier's API, or its order's link posted to
// ingest) to its mail; retries of a waiting message come minutes apart, so
// what goes out within the poll budget went out on a wake-up. Goal: p99 of
// 2 s or less (issue 16).
func BenchmarkWakeLatencyServices(b *testing.B) {
	redisURL := redistest.URL(b)
	nats := natstest.Start(b)
	bin := build(b)
	for _, last := range []string{"contact_last", "link_last"} {
		b.Run(last, func(b *testing.B) {
			ns := testns.New(b)
			nats.RemoveNamespace(b, ns)
			redistest.RemovePrefix(b, redistest.Client(b), ns)
			srv := smtptest.Start(b, smtptest.Options{})
			hook := freeAddr(b)
			procs := startServices(b, bin, []string{"ingest", "processor", "notifier"},
				"ESIMFLOW_NATS_URL="+nats.URL, "ESIMFLOW_REDIS_URL="+redisURL, "ESIMFLOW_NAMESPACE="+ns, "ESIMFLOW_HTTP_ADDR="+hook,
				"ESIMFLOW_SMTP_URL=smtp://"+srv.Addr, "ESIMFLOW_EMAIL_FROM=Shop <care@shop.example>",
				"ESIMFLOW_CONTACT_WAIT=15m", "ESIMFLOW_MAX_DELIVER=3")
			webhook, api := "http://"+hook+"/webhooks/esim", "http://"+procs[2].admin
			var lat []time.Duration
			for i := range b.N {
				orderNo, iccid := fmt.Sprintf("ORDS%05d", i), fmt.Sprintf("8903%09d", i)
				tx := "tx-" + orderNo
				if last == "link_last" {
					allinonetest.PutContact(b, api, tx, `{"email":"bench@example.com"}`)
				}
				post(b, webhook, map[string]any{"eventType": "PROFILE_STATUS", "iccid": iccid, "orderNo": orderNo,
					"transactionId": map[bool]string{true: tx}[last == "contact_last"],
					"currentStatus": "ACTIVATED", "timestamp": time.Now().UTC().Format(time.RFC3339)})
				id := "activation:" + iccid + ".o" + orderNo
				poll.Until(b, "the activation waiting", func() bool { return waiting(api, iccid, id) }, poll.Every(time.Millisecond))
				t0 := time.Now()
				if last == "contact_last" {
					allinonetest.PutContact(b, api, tx, `{"email":"bench@example.com"}`)
				} else {
					post(b, webhook, map[string]any{"eventType": "ORDER_STATUS", "orderNo": orderNo, "transactionId": tx,
						"status": "GOT_RESOURCE", "timestamp": time.Now().UTC().Format(time.RFC3339), "profiles": []map[string]any{{"iccid": iccid}}})
				}
				poll.Until(b, "the mail of "+id, func() bool {
					return slices.ContainsFunc(srv.Mail(), func(m smtptest.Mail) bool { return m.Header.Get("X-Esimflow-Intent") == id })
				}, poll.Every(time.Millisecond))
				lat = append(lat, time.Since(t0))
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Milliseconds()), "p50_ms")
			b.ReportMetric(float64(lat[min(len(lat)-1, len(lat)*99/100)].Milliseconds()), "p99_ms")
			b.ReportMetric(float64(lat[len(lat)-1].Milliseconds()), "max_ms")
		})
	}
}

func post(b *testing.B, url string, body map[string]any) {
	b.Helper()
	raw, err := json.Marshal(body)
	if err != nil {
		b.Fatal(err)
	}
	resp, err := http.Post(url, "application/json", strings.NewReader(string(raw)))
	if err != nil {
		b.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b.Fatalf("POST %s: %s", raw, resp.Status)
	}
}

// waiting reports whether the intent id's latest log entry says it waits.
func waiting(api, iccid, id string) bool {
	var n struct{ Notifications []store.Notification }
	getJSON(api+"/v1/notifications?iccid="+iccid, &n)
	for i := len(n.Notifications) - 1; i >= 0; i-- {
		if e := n.Notifications[i]; e.ID == id {
			return e.Status == store.NotificationWaiting
		}
	}
	return false
}
