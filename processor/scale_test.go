package processor_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"testing"
	"time"

	"github.com/esimflow/esimflow/shared/event"
	"github.com/esimflow/esimflow/shared/poll"
	"github.com/esimflow/esimflow/shared/stream"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// EnvScale set to "full" makes TestScaleOut the full run (make
// test-scale): 20 000 events for 2 000 eSIMs instead of 2 000 for 200.
const EnvScale = "ESIMFLOW_TEST_SCALE"

// TestScaleOut: three processor instances on the one durable consumer, a
// shuffled backlog with ~20 % duplicates (published without Nats-Msg-Id, as
// late provider retries are, so they reach the processors) — the state
// equals the oracle's and each intent is published once. Half the instances'
// work is batched, so both loops are held to the same guarantees.
func TestScaleOut(t *testing.T) {
	esims, events, limit := 200, 2000, 2*time.Minute
	if os.Getenv(EnvScale) == "full" {
		esims, events, limit = 2000, 20000, 10*time.Minute
	}
	r := newRig(t, rigOpts{})
	st, _ := r.redisStore(t, "")
	bodies := scaleEvents(rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 5)), esims, events)
	t.Logf("%d events (%d distinct) for %d eSIMs, 3 instances", len(bodies), distinct(bodies), esims)

	r.publishAll(t, bodies)
	start := time.Now()
	r.start(t, st, instOpts{})
	r.start(t, st, instOpts{workers: 4, batch: 32})
	r.start(t, st, instOpts{})
	poll.Until(t, "backlog drained", func() bool { return r.quiet(t) }, poll.Timeout(limit))
	t.Logf("drained in %v", time.Since(start).Round(time.Millisecond))
	if n := len(r.streamMsgs(t, stream.DLQ)); n != 0 {
		t.Errorf("%d dead letters", n)
	}
	newOracle(t, r).check(t, r, st)
}

// scaleEvents returns n webhook bodies for esims eSIMs (orders of four):
// activation, usage 50/80/90/100 %, validity 3 and 1 days left, a suspension
// for some, each duplicated with probability 1/5, shuffled.
func scaleEvents(r *rand.Rand, esims, n int) []string {
	t0 := time.Date(2026, 11, 1, 8, 0, 0, 0, time.UTC)
	ts := func(m int) string { return t0.Add(time.Duration(m) * time.Minute).Format(time.RFC3339) }
	var out []string
	add := func(format string, args ...any) {
		b := fmt.Sprintf(format, args...)
		out = append(out, b)
		if r.IntN(5) == 0 {
			out = append(out, b)
		}
	}
	for i := range esims {
		iccid, orderNo := fmt.Sprintf("8944%08d", i), fmt.Sprintf("S%06d", i/4)
		if i%4 == 0 {
			add(`{"eventType":"ORDER_STATUS","orderNo":%q,"transactionId":"tx-%s","status":"GOT_RESOURCE","timestamp":%q,"profiles":[`+
				`{"iccid":"8944%08d","status":"GOT_RESOURCE"},{"iccid":"8944%08d","status":"GOT_RESOURCE"},`+
				`{"iccid":"8944%08d","status":"GOT_RESOURCE"},{"iccid":"8944%08d","status":"GOT_RESOURCE"}]}`,
				orderNo, orderNo, ts(0), i, i+1, i+2, i+3)
		}
		add(`{"notifyType":"ESIM_STATUS","eventGenerateTime":%q,"content":{"orderNo":%q,"iccid":%q,"esimStatus":"IN_USE","smdpStatus":"ENABLED"}}`, ts(i+1), orderNo, iccid)
		for k, pct := range []int{25, 50, 80, 90, 100} {
			add(`{"eventType":"DATA_USAGE","iccid":%q,"orderNo":%q,"usedVolume":%d,"totalVolume":1000,"usagePercent":%d,"timestamp":%q}`, iccid, orderNo, pct*10, pct, ts(i+2+k))
		}
		for k, left := range []int{3, 1} {
			add(`{"notifyType":"VALIDITY_USAGE","eventGenerateTime":%q,"content":{"orderNo":%q,"iccid":%q,"durationUnit":"DAY","totalDuration":30,"expiredTime":%q,"remain":%d}}`,
				ts(i+10+k), orderNo, iccid, ts(i+60*24*30), left)
		}
		if r.IntN(2) == 0 {
			add(`{"eventType":"PROFILE_STATUS","iccid":%q,"previousStatus":"IN_USE","currentStatus":"SUSPENDED","timestamp":%q}`, iccid, ts(i+20))
		}
	}
	r.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	return out[:min(n, len(out))]
}

func distinct(bodies []string) int {
	seen := map[string]bool{}
	for _, b := range bodies {
		seen[b] = true
	}
	return len(seen)
}

// publishAll stores the bodies as ingest does, but without Nats-Msg-Id (the
// processor derives each key from the body), with
// asynchronous publishes, and waits for every ack.
func (r *rig) publishAll(t testing.TB, bodies []string) {
	t.Helper()
	js, err := jetstream.New(r.srv.Connect(t), jetstream.WithPublishAsyncMaxPending(1024))
	if err != nil {
		t.Fatal(err)
	}
	received := time.Now().UTC().Format(time.RFC3339Nano)
	for _, b := range bodies {
		ev, _ := event.Decode([]byte(b))
		m := nats.NewMsg(r.names.EventSubject(ev.Type))
		m.Data = []byte(b)
		m.Header.Set(stream.HeaderReceivedAt, received)
		if _, err := js.PublishMsgAsync(m, jetstream.WithStallWait(time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-js.PublishAsyncComplete():
	case <-time.After(time.Minute):
		t.Fatal("publishes not acked in a minute")
	}
	s, err := r.js.Stream(context.Background(), r.names.Stream(stream.Events))
	if err != nil {
		t.Fatal(err)
	}
	if info, err := s.Info(context.Background()); err != nil || info.State.Msgs != uint64(len(bodies)) {
		t.Fatalf("stream holds %v messages, want %d (%v)", info.State.Msgs, len(bodies), err)
	}
}
