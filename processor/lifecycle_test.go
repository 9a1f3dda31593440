package processor_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/esimflow/esimflow/processor"
	"github.com/esimflow/esimflow/shared/intent"
	"github.com/esimflow/esimflow/shared/poll"
	"github.com/esimflow/esimflow/shared/store"
	"github.com/esimflow/esimflow/shared/stream"
)

// onBothStores runs a lifecycle test through the whole processor on each
// store, batched and one event at a time (issue 14: every case on both).
func onBothStores(t *testing.T, fn func(t *testing.T, r *rig, st processor.Store)) {
	t.Run("kv", func(t *testing.T) {
		r := newRig(t, rigOpts{})
		st := r.kvStore(t)
		r.start(t, st, instOpts{})
		fn(t, r, st)
	})
	t.Run("redis/batched", func(t *testing.T) {
		r := newRig(t, rigOpts{})
		st, _ := r.redisStore(t, "")
		r.start(t, st, instOpts{workers: 2, batch: 8})
		fn(t, r, st)
	})
}

// play publishes bodies as ingest stores them and waits until all are handled.
func play(t *testing.T, r *rig, bodies ...string) {
	t.Helper()
	for _, b := range bodies {
		r.publish(t, b, true)
	}
	waitHandled(t, r)
}

// playCopies stores bodies again as a provider's retry after the duplicate
// window is stored (without a Nats-Msg-Id, so the window cannot drop it),
// and waits until all are handled.
func playCopies(t *testing.T, r *rig, bodies ...string) {
	t.Helper()
	for _, b := range bodies {
		r.publish(t, b, false)
	}
	waitHandled(t, r)
}

// waitHandled waits until the processor acked every stored event.
func waitHandled(t *testing.T, r *rig) {
	t.Helper()
	ctx := context.Background()
	s, err := r.js.Stream(ctx, r.names.Stream(stream.Events))
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	c, err := r.js.Consumer(ctx, r.names.Stream(stream.Events), r.names.Consumer(stream.ProcessorConsumer))
	if err != nil {
		t.Fatal(err)
	}
	poll.Until(t, "all events handled", func() bool {
		ci, err := c.Info(ctx)
		return err == nil && ci.AckFloor.Stream >= info.State.LastSeq && ci.NumAckPending == 0
	})
}

func profileOf(t *testing.T, st processor.Store, iccid string) store.Profile {
	t.Helper()
	p, err := st.Profile(context.Background(), iccid)
	if err != nil {
		t.Fatalf("profile %s: %v", iccid, err)
	}
	return p
}

// intentIDs lists the ids of the intents published, in order.
func intentIDs(t *testing.T, r *rig) []string {
	t.Helper()
	var ids []string
	for _, m := range r.streamMsgs(t, stream.Notify) {
		var in intent.Intent
		if err := json.Unmarshal(m.Data, &in); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, in.ID)
	}
	return ids
}

// TestLifecycleUntimedReactivation (issue 14, case 1): IN_USE → SUSPENDED →
// IN_USE a second apart without notifyId or eventGenerateTime, and the
// documented format without timestamp: every event is stored and takes
// effect, the third although it repeats the first.
func TestLifecycleUntimedReactivation(t *testing.T) {
	onBothStores(t, func(t *testing.T, r *rig, st processor.Store) {
		esim := func(status string) string {
			return `{"notifyType":"ESIM_STATUS","content":{"iccid":"89852000000000000011","esimStatus":"` + status + `","smdpStatus":"ENABLED"}}`
		}
		play(t, r, esim("IN_USE"), esim("SUSPENDED"), esim("IN_USE"))
		p := profileOf(t, st, "89852000000000000011")
		if p.Status != "IN_USE" || p.PreviousStatus != "SUSPENDED" || p.OrderedBy != "arrival" || len(p.History) != 3 {
			t.Errorf("eSIM Access: status %s (previous %s, ordered by %q), %d transitions; want IN_USE after SUSPENDED by arrival, 3",
				p.Status, p.PreviousStatus, p.OrderedBy, len(p.History))
		}

		doc := func(prev, status string) string {
			return `{"eventType":"PROFILE_STATUS","iccid":"89852000000000000012","previousStatus":"` + prev + `","currentStatus":"` + status + `"}`
		}
		play(t, r, doc("GOT_RESOURCE", "ACTIVATED"), doc("ACTIVATED", "SUSPENDED"), doc("SUSPENDED", "ACTIVATED"))
		p = profileOf(t, st, "89852000000000000012")
		if p.Status != "ACTIVATED" || p.PreviousStatus != "SUSPENDED" || len(p.History) != 3 {
			t.Errorf("documented: status %s (previous %s), %d transitions; want ACTIVATED after SUSPENDED, 3", p.Status, p.PreviousStatus, len(p.History))
		}
		// The same event again, later: a retry of the latest changes the
		// status of nothing.
		play(t, r, doc("SUSPENDED", "ACTIVATED"))
		if p = profileOf(t, st, "89852000000000000012"); p.Status != "ACTIVATED" || p.PreviousStatus != "SUSPENDED" {
			t.Errorf("after a retry: status %s (previous %s)", p.Status, p.PreviousStatus)
		}
	})
}

// TestLifecycleSameInstantTie (issue 14, case 2): an ORDER_STATUS listing
// the profile as GOT_RESOURCE and a PROFILE_STATUS GOT_RESOURCE→ACTIVATED in
// the same second: previousStatus says which came first, in either arrival
// order; and a timestamp of 0 is no time (case 7), so the untimed SUSPENDED
// that arrives last is the latest.
func TestLifecycleSameInstantTie(t *testing.T) {
	onBothStores(t, func(t *testing.T, r *rig, st processor.Store) {
		order := func(no, iccid string) string {
			return `{"eventType":"ORDER_STATUS","orderNo":"` + no + `","transactionId":"tx-` + no + `","status":"GOT_RESOURCE","timestamp":"2024-01-15T12:00:00Z","profiles":[{"iccid":"` + iccid + `","status":"GOT_RESOURCE"}]}`
		}
		activated := func(iccid string) string {
			return `{"eventType":"PROFILE_STATUS","iccid":"` + iccid + `","previousStatus":"GOT_RESOURCE","currentStatus":"ACTIVATED","timestamp":"2024-01-15T12:00:00Z"}`
		}
		play(t, r, order("O21", "8921"), activated("8921"))
		play(t, r, activated("8922"), order("O22", "8922"))
		for _, iccid := range []string{"8921", "8922"} {
			p := profileOf(t, st, iccid)
			if p.Status != "ACTIVATED" || p.PreviousStatus != "GOT_RESOURCE" || p.OrderedBy != "previousStatus" {
				t.Errorf("%s: status %s (previous %s, ordered by %q), want ACTIVATED after GOT_RESOURCE by previousStatus", iccid, p.Status, p.PreviousStatus, p.OrderedBy)
			}
		}
		play(t, r, `{"eventType":"PROFILE_STATUS","iccid":"8921","previousStatus":"ACTIVATED","currentStatus":"SUSPENDED","timestamp":0}`)
		if p := profileOf(t, st, "8921"); p.Status != "SUSPENDED" || p.OrderedBy != "arrival" {
			t.Errorf("after an untimed SUSPENDED: status %s (ordered by %q)", p.Status, p.OrderedBy)
		}
	})
}

// TestLifecycleTerminalStates (issue 14, case 6): CANCELLED, REVOKED,
// RELEASED, then a late ACTIVATED: the state stays terminal. The messages
// the events ask for are the same as when the ACTIVATED and the usage report
// come first, when the eSIM was still active as far as anyone knew: an
// intent once published cannot be taken back, so a later event never
// decides whether one is (docs/design.md, "Messages"). Whether the customer
// of the released eSIM is told is the notifier's decision when the message
// is due (notifier TestEndedESIMNotTold: it is not).
func TestLifecycleTerminalStates(t *testing.T) {
	onBothStores(t, func(t *testing.T, r *rig, st processor.Store) {
		status := func(iccid, prev, cur, at string) string {
			return `{"eventType":"PROFILE_STATUS","iccid":"` + iccid + `","previousStatus":"` + prev + `","currentStatus":"` + cur + `","timestamp":"` + at + `"}`
		}
		terminal := func(iccid string) []string {
			return []string{status(iccid, "GOT_RESOURCE", "CANCELLED", "2024-01-15T13:00:00Z"),
				status(iccid, "CANCELLED", "REVOKED", "2024-01-15T14:00:00Z"),
				status(iccid, "REVOKED", "RELEASED", "2024-01-15T15:00:00Z")}
		}
		active := func(iccid string) []string {
			return []string{status(iccid, "GOT_RESOURCE", "ACTIVATED", "2024-01-15T12:00:00Z"),
				`{"eventType":"DATA_USAGE","iccid":"` + iccid + `","usedVolume":900,"totalVolume":1000,"timestamp":"2024-01-15T12:30:00Z"}`}
		}
		// 8961 late: after the terminal statuses are merged (events handled
		// at once may each see the state before the other); 8962 in time.
		play(t, r, terminal("8961")...)
		play(t, r, active("8961")...)
		play(t, r, active("8962")...)
		play(t, r, terminal("8962")...)
		for _, iccid := range []string{"8961", "8962"} {
			if p := profileOf(t, st, iccid); p.Status != "RELEASED" {
				t.Errorf("%s: status %s, want RELEASED", iccid, p.Status)
			}
		}
		want := []string{"activation:8961", "low_data:8961:1000:80", "activation:8962", "low_data:8962:1000:80"}
		if got := intentIDs(t, r); !sameSet(got, want) {
			t.Errorf("intents %v, want %v", got, want)
		}
	})
}

// TestLifecycleVocabulary (issue 14, case 7): "in_use" is IN_USE (and
// activates, the provider's spelling kept); a percent outside 0–100 with no
// volumes is dead-lettered with the reason, and clamped where the volumes
// prove the truth.
func TestLifecycleVocabulary(t *testing.T) {
	onBothStores(t, func(t *testing.T, r *rig, st processor.Store) {
		play(t, r,
			`{"notifyType":"ESIM_STATUS","eventGenerateTime":"2024-01-15T12:00:00Z","content":{"iccid":"8971","esimStatus":"in_use","smdpStatus":"enabled"}}`,
			`{"eventType":"DATA_USAGE","iccid":"8971","usagePercent":1e30,"timestamp":"2024-01-15T12:10:00Z"}`,
			`{"eventType":"DATA_USAGE","iccid":"8971","usagePercent":150,"timestamp":"2024-01-15T12:20:00Z"}`,
			`{"eventType":"DATA_USAGE","iccid":"8971","usedVolume":400,"totalVolume":1000,"usagePercent":150,"timestamp":"2024-01-15T12:30:00Z"}`,
		)
		p := profileOf(t, st, "8971")
		if p.Status != "IN_USE" || p.SmdpStatus != "ENABLED" || len(p.History) != 1 || p.History[0].RawStatus != "in_use" {
			t.Errorf("status %s smdp %s history %+v, want IN_USE (raw in_use)", p.Status, p.SmdpStatus, p.History)
		}
		if p.UsagePercent != 40 || p.UsedVolume != 400 {
			t.Errorf("usage %v%% %d bytes, want 40%% 400", p.UsagePercent, p.UsedVolume)
		}
		if ids := intentIDs(t, r); len(ids) != 1 || !strings.HasPrefix(ids[0], "activation:8971") {
			t.Errorf("intents %v, want the activation only", ids)
		}
		dls := r.streamMsgs(t, stream.DLQ)
		if len(dls) != 2 {
			t.Fatalf("%d dead letters, want the two percents without volumes", len(dls))
		}
		for _, dl := range dls {
			if !strings.Contains(dl.Header.Get(stream.HeaderError), "outside 0–100") {
				t.Errorf("dead letter reason %q", dl.Header.Get(stream.HeaderError))
			}
		}
	})
}

// TestLifecycleTopUps (issue 14, case 3): 100 % of 1 GB, then 3 GB with 40 %
// used, then 85 %: a new bundle, warned again at 80 %; the same with eSIM
// Access DATA_USAGE, and a bundle bought again after it ran out (same total,
// usage falls back).
func TestLifecycleTopUps(t *testing.T) {
	const gb = 1 << 30
	onBothStores(t, func(t *testing.T, r *rig, st processor.Store) {
		usage := func(used, total int64, pct int, at string) string {
			return fmt.Sprintf(`{"eventType":"DATA_USAGE","iccid":"8931","usedVolume":%d,"totalVolume":%d,"usagePercent":%d,"timestamp":%q}`, used, total, pct, at)
		}
		play(t, r, usage(gb, gb, 100, "2024-01-15T12:00:00Z"))
		play(t, r, usage(3*gb*40/100, 3*gb, 40, "2024-01-16T12:00:00Z"), usage(3*gb*85/100, 3*gb, 85, "2024-01-17T12:00:00Z"))
		p := profileOf(t, st, "8931")
		if p.Bundle != "3G" || p.TotalVolume != 3*gb || p.UsagePercent != 85 || len(p.Bundles) != 2 || p.Bundles[1].Percent != 100 {
			t.Errorf("bundle %s %d bytes %v%%, bundles %+v; want 3G at 85 %% after 1G at 100 %%", p.Bundle, p.TotalVolume, p.UsagePercent, p.Bundles)
		}

		esim := func(used, total int64, at string) string {
			return fmt.Sprintf(`{"notifyType":"DATA_USAGE","eventGenerateTime":%q,"content":{"orderNo":"B32","esimTranNo":"E32","iccid":"8932","totalVolume":%d,"orderUsage":%d,"remain":%d}}`, at, total, used, total-used)
		}
		play(t, r, esim(gb*85/100, gb, "2024-01-15T12:00:00Z"), esim(gb, gb, "2024-01-15T13:00:00Z"))
		play(t, r, esim(gb/10, gb, "2024-01-16T12:00:00Z"), esim(gb*9/10, gb, "2024-01-17T12:00:00Z"))
		if p := profileOf(t, st, "8932"); p.Bundle != "1G.2" || p.UsagePercent < 89.9 || p.UsagePercent > 90 || len(p.Bundles) != 2 {
			t.Errorf("eSIM Access bought again: bundle %s at %v%%, bundles %+v; want 1G.2 at 90 %%", p.Bundle, p.UsagePercent, p.Bundles)
		}
		want := []string{"low_data:8931:1G:100", "low_data:8931:3G:80",
			"low_data:8932.E32:1G:80", "low_data:8932.E32:1G:100", "low_data:8932.E32:1G.2:80"}
		if got := intentIDs(t, r); !sameSet(got, want) {
			t.Errorf("intents %v, want %v", got, want)
		}
	})
}

// TestLifecycleRenewals (issue 14, case 4): a 1-day warning per validity
// period; a renewal's period warns again; a report handled after its
// period's renewal asks for its period's warning again (one id, sent once);
// a report for a period already past (its end before the report, or before
// now) sends nothing.
func TestLifecycleRenewals(t *testing.T) {
	onBothStores(t, func(t *testing.T, r *rig, st processor.Store) {
		soon := time.Now().UTC().Add(24 * time.Hour).Truncate(time.Second)
		later := soon.AddDate(0, 1, 0)
		report := func(iccid string, exp time.Time, at time.Time) string {
			return fmt.Sprintf(`{"notifyType":"VALIDITY_USAGE","eventGenerateTime":%q,"content":{"esimTranNo":"E%s","iccid":%q,"durationUnit":"DAY","totalDuration":30,"expiredTime":%q,"remain":1}}`,
				at.Format(time.RFC3339), iccid, iccid, exp.Format(time.RFC3339))
		}
		now := time.Now().UTC().Truncate(time.Second)
		play(t, r, report("8941", soon, now.Add(-3*time.Hour)))
		play(t, r, report("8941", later, now.Add(-time.Hour)))  // renewed: the new period's report
		play(t, r, report("8941", soon, now.Add(-2*time.Hour))) // late: its period's warning, asked for again
		long := time.Date(2024, 1, 15, 12, 0, 0, 0, time.UTC)
		play(t, r, report("8942", long, long.Add(-24*time.Hour))) // its period ended long ago
		p := profileOf(t, st, "8941")
		if p.Validity == nil || !p.Validity.ExpiresAt.Equal(later) || len(p.Periods) != 2 {
			t.Errorf("validity %+v periods %v, want the renewed period current", p.Validity, p.Periods)
		}
		want := []string{"validity_low:8941.E8941:" + intent.Period(soon) + ":1", "validity_low:8941.E8941:" + intent.Period(later) + ":1"}
		if got := intentIDs(t, r); !sameSet(got, want) {
			t.Errorf("intents %v, want %v", got, want)
		}
	})
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// TestLifecycleReusedICCID (issue 14, case 5): eSIM Access reuses an ICCID
// for a second order (esimTranNo tells the subscriptions apart). Whichever
// order's ORDER_STATUS arrives last, the profile's current subscription is
// the later one and the earlier keeps its own links; the second customer
// gets their own activation and warnings, addressed to their own order.
func TestLifecycleReusedICCID(t *testing.T) {
	onBothStores(t, func(t *testing.T, r *rig, st processor.Store) {
		order := func(iccid, no, esim, at string) string {
			return fmt.Sprintf(`{"notifyType":"ORDER_STATUS","eventGenerateTime":%q,"content":{"orderNo":%q,"transactionId":"tx-%s","orderStatus":"GOT_RESOURCE","profiles":[{"iccid":%q,"esimTranNo":%q}]}}`, at, no, no, iccid, esim)
		}
		esim := func(iccid, no, esim, status, at string) string {
			return fmt.Sprintf(`{"notifyType":"ESIM_STATUS","eventGenerateTime":%q,"content":{"orderNo":%q,"esimTranNo":%q,"iccid":%q,"esimStatus":%q}}`, at, no, esim, iccid, status)
		}
		usage := func(iccid, no, esim string, used int, at string) string {
			return fmt.Sprintf(`{"notifyType":"DATA_USAGE","eventGenerateTime":%q,"content":{"orderNo":%q,"esimTranNo":%q,"iccid":%q,"totalVolume":1000,"orderUsage":%d,"remain":%d}}`, at, no, esim, iccid, used, 1000-used)
		}
		for _, tc := range []struct{ iccid, first, second string }{{"8951", "A", "B"}, {"8952", "B", "A"}} {
			// The orders arrive in either order; A is the earlier subscription.
			orders := map[string]string{"A": order(tc.iccid, "A"+tc.iccid, "EA"+tc.iccid, "2024-01-01T00:00:00Z"), "B": order(tc.iccid, "B"+tc.iccid, "EB"+tc.iccid, "2024-03-01T00:00:00Z")}
			play(t, r, orders[tc.first], orders[tc.second])
			play(t, r,
				esim(tc.iccid, "A"+tc.iccid, "EA"+tc.iccid, "IN_USE", "2024-01-02T00:00:00Z"),
				usage(tc.iccid, "A"+tc.iccid, "EA"+tc.iccid, 850, "2024-01-10T00:00:00Z"))
			// A month later (handled together, the first customer's
			// activation would land on an expired eSIM and stay unsent).
			play(t, r, esim(tc.iccid, "A"+tc.iccid, "EA"+tc.iccid, "USED_EXPIRED", "2024-02-01T00:00:00Z"),
				esim(tc.iccid, "B"+tc.iccid, "EB"+tc.iccid, "IN_USE", "2024-03-02T00:00:00Z"))
			p := profileOf(t, st, tc.iccid)
			if p.OrderNo != "B"+tc.iccid || p.TransactionID != "tx-B"+tc.iccid || p.EsimTranNo != "EB"+tc.iccid || p.Status != "IN_USE" || len(p.Subscriptions) != 2 ||
				p.Subscriptions[0].OrderNo != "A"+tc.iccid || p.Subscriptions[0].EsimTranNo != "EA"+tc.iccid {
				t.Errorf("orders %s then %s: profile %s/%s/%s %s, subscriptions %+v; want B's current, A's kept", tc.first, tc.second,
					p.OrderNo, p.TransactionID, p.EsimTranNo, p.Status, p.Subscriptions)
			}
		}
		play(t, r, usage("8951", "B8951", "EB8951", 900, "2024-03-10T00:00:00Z"))
		byID := map[string]intent.Intent{}
		for _, m := range r.streamMsgs(t, stream.Notify) {
			var in intent.Intent
			if err := json.Unmarshal(m.Data, &in); err != nil {
				t.Fatal(err)
			}
			byID[in.ID] = in
		}
		for id, tx := range map[string]string{
			"activation:8951.EA8951": "tx-A8951", "low_data:8951.EA8951:1000:80": "tx-A8951",
			"activation:8951.EB8951": "tx-B8951", "low_data:8951.EB8951:1000:80": "tx-B8951",
		} {
			if in, ok := byID[id]; !ok || in.TransactionID != tx {
				t.Errorf("intent %s: %+v, want one for %s", id, in, tx)
			}
		}
	})
}

// TestLifecycleTopUpAndRenewalMessages (issue 14, "What it must do"): with
// ESIMFLOW_NOTIFY_TOP_UPS and ESIMFLOW_NOTIFY_RENEWALS on, a new bundle and
// a new period each ask for one message (off by default: the other lifecycle
// tests publish none).
func TestLifecycleTopUpAndRenewalMessages(t *testing.T) {
	r := newRig(t, rigOpts{})
	r.cfg.Processor.TopUps, r.cfg.Processor.Renewals = true, true
	st := r.kvStore(t)
	r.start(t, st, instOpts{})
	now := time.Now().UTC().Truncate(time.Second)
	usage := func(used, total int, at time.Time) string {
		return fmt.Sprintf(`{"notifyType":"DATA_USAGE","eventGenerateTime":%q,"content":{"esimTranNo":"E81","iccid":"8981","totalVolume":%d,"orderUsage":%d,"remain":%d}}`,
			at.Format(time.RFC3339), total, used, total-used)
	}
	validity := func(exp, at time.Time) string {
		return fmt.Sprintf(`{"notifyType":"VALIDITY_USAGE","eventGenerateTime":%q,"content":{"esimTranNo":"E81","iccid":"8981","durationUnit":"DAY","totalDuration":30,"expiredTime":%q,"remain":20}}`,
			at.Format(time.RFC3339), exp.Format(time.RFC3339))
	}
	exp1, exp2 := now.AddDate(0, 0, 20), now.AddDate(0, 1, 20)
	play(t, r, usage(100, 1000, now.Add(-4*time.Hour)), validity(exp1, now.Add(-4*time.Hour)))
	play(t, r, usage(100, 3000, now.Add(-3*time.Hour)), validity(exp2, now.Add(-3*time.Hour)))
	play(t, r, usage(200, 3000, now.Add(-2*time.Hour))) // same bundle: nothing
	want := []string{"topped_up:8981.E81:3000", "renewed:8981.E81:" + intent.Period(exp2)}
	if got := intentIDs(t, r); !sameSet(got, want) {
		t.Errorf("intents %v, want %v", got, want)
	}
}

// TestLifecycleStateAPI (issue 14, "the state API shows bundles, periods and
// subscriptions"): GET /v1/profiles/{iccid} answers them, with what ordered
// the status.
func TestLifecycleStateAPI(t *testing.T) {
	r := newRig(t, rigOpts{})
	in := r.start(t, r.kvStore(t), instOpts{})
	at := func(h int) string { return time.Date(2024, 1, 15, h, 0, 0, 0, time.UTC).Format(time.RFC3339) }
	exp := time.Now().UTC().AddDate(0, 1, 0).Truncate(time.Second).Format(time.RFC3339)
	play(t, r,
		`{"notifyType":"ORDER_STATUS","eventGenerateTime":"`+at(1)+`","content":{"orderNo":"S1","transactionId":"tx-S1","orderStatus":"GOT_RESOURCE","profiles":[{"iccid":"8991","esimTranNo":"E1","status":"GOT_RESOURCE"}]}}`,
		`{"notifyType":"ESIM_STATUS","content":{"orderNo":"S1","esimTranNo":"E1","iccid":"8991","esimStatus":"IN_USE"}}`,
		`{"notifyType":"DATA_USAGE","eventGenerateTime":"`+at(3)+`","content":{"orderNo":"S1","esimTranNo":"E1","iccid":"8991","totalVolume":1073741824,"orderUsage":1073741824,"remain":0}}`,
		`{"notifyType":"DATA_USAGE","eventGenerateTime":"`+at(4)+`","content":{"orderNo":"S1","esimTranNo":"E1","iccid":"8991","totalVolume":3221225472,"orderUsage":1073741824,"remain":2147483648}}`,
		`{"notifyType":"VALIDITY_USAGE","eventGenerateTime":"`+at(5)+`","content":{"orderNo":"S1","esimTranNo":"E1","iccid":"8991","durationUnit":"DAY","totalDuration":30,"expiredTime":"`+exp+`","remain":30}}`,
	)
	var p struct {
		Bundle        string
		OrderedBy     string
		Bundles       []struct{ ID string }
		Periods       []struct{ ExpiresAt time.Time }
		Subscriptions []struct{ OrderNo, EsimTranNo, TransactionID string }
	}
	if code := in.call(t, "GET", "/v1/profiles/8991", &p); code != 200 {
		t.Fatalf("GET: %d", code)
	}
	if p.Bundle != "3G" || len(p.Bundles) != 2 || p.Bundles[1].ID != "1G" || len(p.Periods) != 1 || p.OrderedBy != "arrival" ||
		len(p.Subscriptions) != 1 || p.Subscriptions[0].EsimTranNo != "E1" || p.Subscriptions[0].TransactionID != "tx-S1" {
		t.Errorf("profile %+v", p)
	}
}
