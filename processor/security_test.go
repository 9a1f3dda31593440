package processor_test

import (
	"context"
	"strings"
	"testing"

	"github.com/esimflow/esimflow/shared/poll"
	"github.com/esimflow/esimflow/shared/stream"
)

// TestSecurityPoisonedEventsDeadLetteredNotMerged (issue 13 item 4): events
// anyone able to post could use to poison state — one dated 2099 (would pin
// the profile at 100 % and send "data exhausted"), one with a status of
// 100 KiB (ten of them filled a profile to the KV value limit) — are
// dead-lettered with the reason; the profile keeps its real state and no
// message is asked for.
func TestSecurityPoisonedEventsDeadLetteredNotMerged(t *testing.T) {
	r := newRig(t, rigOpts{maxDeliver: 3})
	st := r.kvStore(t)
	r.start(t, st, instOpts{})
	r.publish(t, `{"eventType":"DATA_USAGE","iccid":"8931","usedVolume":100,"totalVolume":1000,"timestamp":"2024-01-15T14:00:00Z"}`, true)
	poll.Until(t, "the real usage merged", func() bool {
		p, err := st.Profile(context.Background(), "8931")
		return err == nil && p.UsagePercent == 10
	})
	r.publish(t, `{"eventType":"DATA_USAGE","iccid":"8931","usagePercent":100,"usedVolume":1000,"totalVolume":1000,"timestamp":"2099-01-01T00:00:00Z"}`, true)
	r.publish(t, `{"eventType":"PROFILE_STATUS","iccid":"8931","currentStatus":"`+strings.Repeat("S", 100<<10)+`","timestamp":"2024-01-15T15:00:00Z"}`, true)
	poll.Until(t, "two dead letters", func() bool { return len(r.streamMsgs(t, stream.DLQ)) == 2 })
	reasons := ""
	for _, m := range r.streamMsgs(t, stream.DLQ) {
		reasons += m.Header.Get(stream.HeaderError) + "\n"
	}
	if !strings.Contains(reasons, "future") || !strings.Contains(reasons, "at most 64") {
		t.Errorf("dead letter reasons:\n%s", reasons)
	}
	p, err := st.Profile(context.Background(), "8931")
	if err != nil || p.UsagePercent != 10 || len(p.Status) > 64 {
		t.Errorf("profile poisoned: usage %v%%, status of %d bytes (%v)", p.UsagePercent, len(p.Status), err)
	}
	if n := len(r.streamMsgs(t, stream.Notify)); n != 0 {
		t.Errorf("%d notification intents published for poisoned events", n)
	}
}
