package processor_test

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"sync"
	"testing"
	"time"

	"github.com/esimflow/esimflow/processor"
	"github.com/esimflow/esimflow/shared/poll"
	"github.com/esimflow/esimflow/shared/stream"
	"github.com/redis/go-redis/v9"
)

// snapshot reads every order and profile of the namespace from Redis, as
// stored (readState).
func snapshot(t testing.TB, c redis.UniversalClient, ns string) map[string]string {
	t.Helper()
	out, err := readState(context.Background(), c, ns)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// readState reads every order and profile of the namespace from Redis; on a
// cluster client, from every primary.
func readState(ctx context.Context, c redis.UniversalClient, ns string) (map[string]string, error) {
	out := map[string]string{}
	var mu sync.Mutex
	read := func(ctx context.Context, c redis.Cmdable) error {
		for _, kind := range []string{"o", "p"} {
			iter := c.Scan(ctx, 0, "esimflow:"+ns+":{"+kind+":*", 1000).Iterator()
			for iter.Next(ctx) {
				v, err := c.Get(ctx, iter.Val()).Result()
				if err != nil {
					return err
				}
				mu.Lock()
				out[iter.Val()] = v
				mu.Unlock()
			}
			if err := iter.Err(); err != nil {
				return err
			}
		}
		return nil
	}
	var err error
	if cc, ok := c.(*redis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error { return read(ctx, m) })
	} else {
		err = read(ctx, c)
	}
	return out, err
}

// wipe deletes every key of the namespace: the store is lost.
func wipe(t testing.TB, c redis.UniversalClient, ns string) {
	t.Helper()
	ctx := context.Background()
	iter := c.Scan(ctx, 0, "esimflow:"+ns+":*", 1000).Iterator()
	for iter.Next(ctx) {
		if err := c.Del(ctx, iter.Val()).Err(); err != nil {
			t.Fatal(err)
		}
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
}

// TestReplayRebuildsLostStore: after the store's keys are wiped, a replay of
// ESIM_EVENTS gives back the same state, byte for byte, restores the seen
// marks, and publishes no intent (no customer message can go out twice).
func TestReplayRebuildsLostStore(t *testing.T) {
	r := newRig(t, rigOpts{})
	st, c := r.redisStore(t, "")
	in := r.start(t, st, instOpts{})
	bodies := lifecycles(rand.New(rand.NewPCG(1, 2)), 40, true)
	for _, b := range bodies {
		r.publish(t, b, false) // duplicates included: they reach the processor
	}
	r.publish(t, `{"eventType":"REFUND","orderNo":"O"}`, true)
	r.publish(t, `{"eventType":"DATA_USAGE","iccid":"1","usedVolume":"lots"}`, true)
	poll.Until(t, "all processed", func() bool { return r.quiet(t) })
	in.stop()
	before := snapshot(t, c, r.ns)
	intents := len(r.streamMsgs(t, stream.Notify))
	if len(before) == 0 || intents == 0 {
		t.Fatalf("nothing to compare: %d keys, %d intents", len(before), intents)
	}

	wipe(t, c, r.ns)
	var total, steps uint64
	stats, err := processor.Replay(context.Background(), r.js, r.names, st, processor.ReplayOptions{
		SeenTTL: time.Hour, Progress: func(n uint64) { total = n }, Step: func() { steps++ },
	})
	if err != nil {
		t.Fatal(err)
	}
	events := uint64(len(bodies) + 2)
	if stats.Events != events || stats.Parked != 1 || stats.Malformed != 1 || stats.Applied != events-2 || total != events || steps != events {
		t.Errorf("stats %+v, progress %d/%d; want %d events", stats, steps, total, events)
	}
	if after := snapshot(t, c, r.ns); !maps.Equal(after, before) {
		t.Errorf("state after replay differs: %d keys, %d before", len(after), len(before))
		for k, v := range before {
			if after[k] != v {
				t.Errorf("%s:\n got %s\nwant %s", k, after[k], v)
				break
			}
		}
	}
	if n := len(r.streamMsgs(t, stream.Notify)); n != intents {
		t.Errorf("replay published intents: %d, %d before", n, intents)
	}
	// The seen marks are back: a late provider retry is skipped.
	in2 := r.start(t, st, instOpts{})
	r.publish(t, bodies[0], false)
	poll.Until(t, "the retry handled", func() bool { return r.quiet(t) })
	if n := processedAs(in2, "duplicate"); n != 1 {
		t.Errorf("late retry after replay: %d duplicates, want 1", n)
	}

	// From a sequence, and since a time.
	stats, err = processor.Replay(context.Background(), r.js, r.names, st, processor.ReplayOptions{FromSeq: events - 4})
	if err != nil || stats.Events != 6 { // 5 of the first lot, and the retry
		t.Errorf("from seq %d: %+v %v", events-4, stats, err)
	}
	stats, err = processor.Replay(context.Background(), r.js, r.names, st, processor.ReplayOptions{Since: time.Now().Add(time.Hour)})
	if err != nil || stats.Events != 0 {
		t.Errorf("since the future: %+v %v", stats, err)
	}
}

// processedAs counts events the instance handled with an outcome.
func processedAs(in *instance, outcome string) int {
	mfs, _ := in.admin.Gatherer().Gather()
	n := 0
	for _, mf := range mfs {
		if mf.GetName() != "esimflow_events_processed_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "outcome" && l.GetValue() == outcome {
					n += int(m.GetCounter().GetValue())
				}
			}
		}
	}
	return n
}

// lifecycles returns the webhook bodies of n eSIMs in orders of up to four,
// both provider formats, with ~20 % duplicates (dups) and shuffled.
func lifecycles(r *rand.Rand, n int, dups bool) []string {
	t0 := time.Date(2026, 11, 1, 8, 0, 0, 0, time.UTC)
	var out []string
	add := func(b string) {
		out = append(out, b)
		if dups && r.IntN(5) == 0 {
			out = append(out, b)
		}
	}
	ts := func(m int) string { return t0.Add(time.Duration(m) * time.Minute).Format(time.RFC3339) }
	for i := 0; i < n; {
		orderNo := fmt.Sprintf("ORD%05d", i)
		var profiles string
		for k := 0; k < 4 && i < n; k, i = k+1, i+1 {
			iccid := fmt.Sprintf("8901%08d", i)
			if profiles != "" {
				profiles += ","
			}
			profiles += fmt.Sprintf(`{"iccid":%q,"esimTranNo":"E%d","status":"GOT_RESOURCE"}`, iccid, i)
			if i%2 == 0 {
				add(fmt.Sprintf(`{"eventType":"PROFILE_STATUS","iccid":%q,"orderNo":%q,"previousStatus":"GOT_RESOURCE","currentStatus":"ACTIVATED","timestamp":%q}`, iccid, orderNo, ts(i+1)))
				for k, pct := range []int{50, 80, 100} {
					add(fmt.Sprintf(`{"eventType":"DATA_USAGE","iccid":%q,"usedVolume":%d,"totalVolume":1000,"usagePercent":%d,"timestamp":%q}`, iccid, pct*10, pct, ts(i+2+k)))
				}
			} else {
				add(fmt.Sprintf(`{"notifyType":"ESIM_STATUS","eventGenerateTime":%q,"content":{"orderNo":%q,"iccid":%q,"esimStatus":"IN_USE","smdpStatus":"ENABLED"}}`, ts(i+1), orderNo, iccid))
				add(fmt.Sprintf(`{"notifyType":"DATA_USAGE","eventGenerateTime":%q,"content":{"orderNo":%q,"iccid":%q,"totalVolume":1000,"orderUsage":850,"remain":150}}`, ts(i+2), orderNo, iccid))
				add(fmt.Sprintf(`{"notifyType":"VALIDITY_USAGE","eventGenerateTime":%q,"content":{"orderNo":%q,"iccid":%q,"durationUnit":"DAY","totalDuration":30,"expiredTime":%q,"remain":1}}`, ts(i+3), orderNo, iccid, ts(i+60*24*30)))
			}
			if r.IntN(4) == 0 {
				add(fmt.Sprintf(`{"eventType":"PROFILE_STATUS","iccid":%q,"previousStatus":"ACTIVATED","currentStatus":"SUSPENDED","timestamp":%q}`, iccid, ts(i+9)))
			}
		}
		add(fmt.Sprintf(`{"eventType":"ORDER_STATUS","orderNo":%q,"transactionId":"tx-%s","status":"GOT_RESOURCE","timestamp":%q,"profiles":[%s]}`, orderNo, orderNo, ts(0), profiles))
	}
	r.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out
}

// TestReplayRebuildsUntimedLifecycles (issue 14, "replay rebuilds exactly
// the same state"): lifecycles without event times — re-activations,
// top-ups, a reused ICCID, provider retries stored twice — processed in
// batches by two instances, then replayed into a wiped store: the state is
// the same byte for byte, the stream sequence ordering both alike.
func TestReplayRebuildsUntimedLifecycles(t *testing.T) {
	r := newRig(t, rigOpts{})
	st, c := r.redisStore(t, "")
	a := r.start(t, st, instOpts{workers: 2, batch: 8})
	b := r.start(t, st, instOpts{workers: 2})
	var bodies []string
	for i := range 12 {
		iccid := fmt.Sprintf("89700%03d", i)
		for c, esim := range []string{"EA", "EB"}[:1+i%2] {
			order := fmt.Sprintf("R%d-%d", i, c)
			ev := func(kind, content string) string {
				return fmt.Sprintf(`{"notifyType":%q,"content":{"orderNo":%q,"esimTranNo":"%s%d","iccid":%q,%s}}`, kind, order, esim, i, iccid, content)
			}
			bodies = append(bodies,
				fmt.Sprintf(`{"notifyType":"ORDER_STATUS","content":{"orderNo":%q,"transactionId":"tx-%s","orderStatus":"GOT_RESOURCE","profiles":[{"iccid":%q,"esimTranNo":"%s%d"}]}}`, order, order, iccid, esim, i),
				ev("ESIM_STATUS", `"esimStatus":"IN_USE"`),
				ev("DATA_USAGE", `"totalVolume":1000,"orderUsage":1000,"remain":0`),
				ev("DATA_USAGE", `"totalVolume":3000,"orderUsage":1200,"remain":1800`),
				ev("ESIM_STATUS", `"esimStatus":"SUSPENDED"`),
				ev("ESIM_STATUS", `"esimStatus":"IN_USE"`),
				ev("ESIM_STATUS", `"esimStatus":"IN_USE"`), // a retry, stored again
			)
		}
	}
	play(t, r, bodies...) // as ingest: untimed events carry no key
	a.stop()
	b.stop()
	before := snapshot(t, c, r.ns)
	if len(before) == 0 {
		t.Fatal("nothing stored")
	}
	wipe(t, c, r.ns)
	if _, err := processor.Replay(context.Background(), r.js, r.names, st, processor.ReplayOptions{}); err != nil {
		t.Fatal(err)
	}
	after := snapshot(t, c, r.ns)
	if len(after) != len(before) {
		t.Errorf("%d keys after replay, %d before", len(after), len(before))
	}
	for k, v := range before {
		if after[k] != v {
			t.Errorf("%s:\n got %s\nwant %s", k, after[k], v)
			break
		}
	}
	p, err := st.Profile(context.Background(), "89700001")
	if err != nil || p.Status != "IN_USE" || p.EsimTranNo != "EB1" || len(p.Subscriptions) != 2 || p.Bundle != "3000" || p.Bundles[0].Subscription != "EB1" {
		t.Errorf("reused ICCID after replay: %+v %v", p, err)
	}
}

// TestReplayLeavesUnprocessedEventsToTheProcessor: a replay while the
// processor is behind merges the events it has not handled yet but does not
// mark them seen, so the processor still handles them in full when it gets
// to them — their intents are published, none is skipped as a retry.
func TestReplayLeavesUnprocessedEventsToTheProcessor(t *testing.T) {
	r := newRig(t, rigOpts{})
	st, _ := r.redisStore(t, "")
	bodies := lifecycles(rand.New(rand.NewPCG(3, 4)), 12, false)
	for _, b := range bodies {
		r.publish(t, b, true)
	}
	// No processor has run: the whole stream is behind it.
	stats, err := processor.Replay(context.Background(), r.js, r.names, st, processor.ReplayOptions{SeenTTL: time.Hour})
	if err != nil || stats.Applied != uint64(len(bodies)) {
		t.Fatalf("replay: %+v, %v", stats, err)
	}
	in := r.start(t, st, instOpts{})
	poll.Until(t, "all processed", func() bool { return r.quiet(t) })
	if n := processedAs(in, "duplicate"); n != 0 {
		t.Errorf("%d events skipped as retries after the replay marked them seen", n)
	}
	if n := len(r.streamMsgs(t, stream.Notify)); n == 0 {
		t.Error("no intent published: the replay's seen marks hid the events from the processor")
	}
}
