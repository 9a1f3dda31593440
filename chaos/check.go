package chaos

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/esimflow/esimflow/notifier/channel"
	"github.com/esimflow/esimflow/processor"
	"github.com/esimflow/esimflow/processor/merge"
	"github.com/esimflow/esimflow/processor/merge/mergetest"
	"github.com/esimflow/esimflow/shared/event"
	"github.com/esimflow/esimflow/shared/intent"
	"github.com/esimflow/esimflow/shared/store/redisstore"
	"github.com/esimflow/esimflow/shared/stream"
	"github.com/nats-io/nats.go/jetstream"
)

// Checks, the names violations are reported under.
const (
	CheckLost       = "lost events"         // answered 200, not in ESIM_EVENTS
	CheckUnexpected = "unexpected events"   // in ESIM_EVENTS, never sent
	CheckState      = "state"               // order/profile differs from the oracle
	CheckMissing    = "missing messages"    // expected, not received
	CheckDuplicate  = "duplicate messages"  // more copies than the log explains
	CheckExtra      = "unexpected messages" // received, not expected
	CheckDLQ        = "dead letters"        // in ESIM_DLQ though not deliberate, or deliberate and missing
	CheckCrash      = "crashes"             // a process exited on its own
	CheckBind       = "bind"                // a restarted process never got its port back
	CheckMemory     = "memory"              // RSS above the bound
	CheckQuiescence = "quiescence"          // the system did not settle
)

// Violation is one broken invariant.
type Violation struct {
	Check  string
	Detail string
}

// stored is one message of ESIM_EVENTS.
type stored struct {
	key  string
	data []byte
	at   time.Time
}

// quiesce waits until both consumers have nothing pending or unacked, every
// process runs, and no message reached the sink for a few seconds.
func quiesce(ctx context.Context, js jetstream.JetStream, c *cluster, sink *Sink, limit time.Duration) error {
	names := stream.NewNames("")
	deadline := time.Now().Add(limit)
	var last string
	for {
		busy := ""
		for _, sc := range [][2]string{{stream.Events, stream.ProcessorConsumer}, {stream.Notify, stream.NotifierConsumer}} {
			cons, err := js.Consumer(ctx, names.Stream(sc[0]), names.Consumer(sc[1]))
			if err != nil {
				busy = fmt.Sprintf("consumer %s: %v", sc[1], err)
				break
			}
			info, err := cons.Info(ctx)
			if err != nil {
				busy = fmt.Sprintf("consumer %s: %v", sc[1], err)
				break
			}
			if info.NumPending > 0 || info.NumAckPending > 0 {
				busy = fmt.Sprintf("%s: %d pending, %d unacked", sc[1], info.NumPending, info.NumAckPending)
				break
			}
		}
		if busy == "" {
			busy = c.down()
		}

		if _, at := sink.Total(); busy == "" && time.Since(at) < 3*time.Second {
			busy = "messages still arriving"
		}
		if busy == "" {
			return nil
		}
		last = busy
		if time.Now().After(deadline) {
			return fmt.Errorf("not quiet after %v: %s", limit, last)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Second):
		}
	}
}

// oracle is the state the acknowledged events must produce: merge.Apply on
// maps, one event at a time, as the processor's own oracle test does; and
// the intents they ask for, which are the same whatever order the
// processors handle them in (docs/design.md, "Messages").
type oracle struct {
	*mergetest.State
	intents map[string]intent.Intent
}

// eventTime is the processor's rule: the provider's timestamp, else when
// JetStream stored the event, else when ingest received it.
func eventTime(ev event.Event, m storedMsg) time.Time {
	if !ev.Timestamp.IsZero() {
		return ev.Timestamp
	}
	if meta, err := m.Metadata(); err == nil && !meta.Timestamp.IsZero() {
		return meta.Timestamp.UTC()
	}
	if t, err := time.Parse(time.RFC3339Nano, m.Headers().Get(stream.HeaderReceivedAt)); err == nil {
		return t
	}
	return time.Time{}
}

// verdict is the outcome of the checks.
type verdict struct {
	Violations []Violation
	// Jepsen's classes over distinct events.
	Attempted, Acknowledged, Present, Lost, Unexpected, Duplicated, Indeterminate int
	// Messages.
	Expected, Received, Tolerated, Suppressed int
	DeadLetters, DeliberateBad                int
	// ByChannel counts the copies received per channel.
	ByChannel map[string]int
}

func (v *verdict) add(check, format string, args ...any) {
	v.Violations = append(v.Violations, Violation{Check: check, Detail: fmt.Sprintf(format, args...)})
}

// shown is how many violations of one kind are listed before a total.
const shown = 5

// addCapped adds the nth violation of a kind only while n ≤ shown.
func (v *verdict) addCapped(n int, check, format string, args ...any) {
	if n <= shown {
		v.add(check, format, args...)
	}
}

// addTotal adds "... n in all" when more than shown were found.
func (v *verdict) addTotal(n int, check, format string) {
	if n > shown {
		v.add(check, format, n)
	}
}

// checkAll compares what the system holds and sent with what the provider sent.
func checkAll(ctx context.Context, js jetstream.JetStream, redisURL string, sent []*Sent, bad []*Sent, sink *Sink, emailDomain string) (*verdict, error) {
	v := &verdict{}
	names := stream.NewNames("")
	msgs, err := readStream(ctx, js, names.Stream(stream.Events))
	if err != nil {
		return nil, err
	}
	v.checkEvents(msgs, slices.Concat(sent, bad))
	o, err := newOracle(ctx, msgs)
	if err != nil {
		return nil, err
	}
	st, closeStore, err := openStore(redisURL)
	if err != nil {
		return nil, err
	}
	defer closeStore()
	v.checkState(ctx, st, o)
	if err := v.checkMessages(ctx, st, o, sink.Copies(), emailDomain); err != nil {
		return nil, err
	}
	dlq, err := readStream(ctx, js, names.Stream(stream.DLQ))
	if err != nil {
		return nil, err
	}
	v.checkDeadLetters(dlq, bad)
	return v, nil
}

// checkEvents classes the events: attempted (sent at least once),
// acknowledged (answered 200), present (in ESIM_EVENTS). An acknowledged
// event that is not present is lost; a present one never sent is unexpected.
func (v *verdict) checkEvents(msgs []storedMsg, sent []*Sent) {
	present := map[string]int{}
	for _, m := range msgs {
		present[stream.DedupeKey(m.Headers())]++
	}
	attempted := map[string]*Sent{}
	for _, s := range sent {
		if s.attempted.Load() {
			attempted[s.Key] = s
		}
	}
	v.Attempted, v.Present = len(attempted), len(present)
	for key, s := range attempted {
		acked := s.acked.Load()
		if acked {
			v.Acknowledged++
		}
		switch {
		case acked && present[key] == 0:
			v.Lost++
			v.addCapped(v.Lost, CheckLost, "answered 200, not in ESIM_EVENTS: %s", s.Body)
		case !acked && present[key] > 0:
			v.Indeterminate++ // never answered 200 but stored: allowed
		}
	}
	v.addTotal(v.Lost, CheckLost, "... %d events lost in all")
	for key, n := range present {
		if attempted[key] == nil {
			v.Unexpected++
			v.addCapped(v.Unexpected, CheckUnexpected, "in ESIM_EVENTS, never sent: key %s", key)
		}
		if n > 1 {
			v.Duplicated++ // beyond the duplicate window: the seen-set's job, not a violation
		}
	}
}

// newOracle applies every event present, in stream order, to maps, and
// collects the intents they ask for.
func newOracle(ctx context.Context, msgs []storedMsg) (*oracle, error) {
	o := &oracle{State: mergetest.New(), intents: map[string]intent.Intent{}}
	rules := intent.Rules{LowDataThresholds: []int{80, 100}, ValidityLowDays: intent.DefaultValidityLowDays}
	for _, m := range msgs {
		ev, err := event.Decode(m.Data())
		if err != nil || ev.Type == event.Unknown || ev.Type == event.CheckHealth {
			continue
		}
		if meta, err := m.Metadata(); err == nil {
			processor.Stamp(&ev, m.Headers(), nil, m.Data(), meta.Sequence.Stream) // as the processor sees it
		}
		at := eventTime(ev, m)
		p, err := merge.Apply(ctx, o, ev, at)
		if err != nil {
			return nil, fmt.Errorf("oracle merge: %w", err)
		}
		for _, in := range intent.For(ev, at, merge.Land(p, ev, at, time.Now()), rules) {
			o.intents[in.ID] = in
		}
	}
	return o, nil
}

// openStore opens the run's Redis store; done closes its client.
func openStore(redisURL string) (st *redisstore.Store, done func(), err error) {
	rdb, err := redisClient(redisURL)
	if err != nil {
		return nil, nil, err
	}
	st, err = redisstore.New(rdb, redisstore.Options{SeenTTL: time.Hour})
	if err != nil {
		_ = rdb.Close()
		return nil, nil, fmt.Errorf("redis store: %w", err)
	}
	return st, func() { _ = rdb.Close() }, nil
}

// checkState compares every order and profile in the store with the oracle's.
func (v *verdict) checkState(ctx context.Context, st *redisstore.Store, o *oracle) {
	diffs := 0
	diff := func(kind, id string, got, want any, err error) {
		g, w := mustJSON(got), mustJSON(want)
		if err == nil && g == w {
			return
		}
		diffs++
		v.addCapped(diffs, CheckState, "%s %s (%v):\n      got  %s\n      want %s", kind, id, err, g, w)
	}
	for id, want := range o.Orders {
		got, err := st.Order(ctx, id)
		diff("order", id, got, want, err)
	}
	for id, want := range o.Profiles {
		got, err := st.Profile(ctx, id)
		diff("profile", id, got, want, err)
	}
	if diffs > shown {
		v.add(CheckState, "... %d of %d entities differ", diffs, len(o.Orders)+len(o.Profiles))
	}
}

// checkMessages holds what reached the customers (copies, by the sink's
// keys) to the oracle's intents: each once; a stale warning (80 % once
// 100 % is due, three days left once one day is) may be suppressed, and so may a message of an eSIM whose final status is
// terminal (the notifier's decisions when a message is due); extra copies
// only where the log says an attempt was retried after an unknown outcome.
func (v *verdict) checkMessages(ctx context.Context, st *redisstore.Store, o *oracle, copies map[string]int, emailDomain string) error {
	perIntent := v.copiesPerIntent(o, copies, emailDomain)
	missing, dups := 0, 0
	for id, in := range o.intents {
		n := perIntent[id]
		optional := intent.Optional(in, o.intents, o.Profiles[in.ICCID])
		switch {
		case n == 0 && optional:
			v.Suppressed++
			continue
		case n == 0:
			missing++
			v.addCapped(missing, CheckMissing, "%s (%s) never reached the customer", id, in.Kind)
		case n > 1:
			unknown, err := retriedUnknown(ctx, st, in)
			if err != nil {
				return err
			}
			if n-1 <= unknown {
				v.Tolerated += n - 1
			} else {
				dups++
				v.addCapped(dups, CheckDuplicate, "%s reached the customer %d times; the log marks %d retries after an unknown outcome", id, n, unknown)
			}
		}
		v.Expected++
	}
	v.addTotal(missing, CheckMissing, "... %d messages missing in all")
	v.addTotal(dups, CheckDuplicate, "... %d messages duplicated in all")
	return nil
}

// copiesPerIntent maps the sink's copies to the intents they carry, and
// reports copies no intent asks for.
func (v *verdict) copiesPerIntent(o *oracle, copies map[string]int, emailDomain string) map[string]int {
	known := map[string]string{} // sink key → intent id
	for id := range o.intents {
		known["email "+"<"+channel.MessageID(id, emailDomain)+">"] = id
		// One delivery per message across channels: a message that fell
		// back from WhatsApp to SMS counts once, and twice if both took it.
		known["sms "+id], known["webhook "+id], known["whatsapp "+id] = id, id, id
	}
	out := map[string]int{}
	v.ByChannel = map[string]int{}
	for k, n := range copies {
		v.Received += n
		ch, _, _ := strings.Cut(k, " ")
		v.ByChannel[ch] += n
		id, ok := known[k]
		if !ok {
			v.add(CheckExtra, "%d× %s: no event asks for it", n, k)
			continue
		}
		out[id] += n
	}
	return out
}

// retriedUnknown counts the attempts at in that the notification log marks
// as retried after an unknown outcome: the copies a customer may get twice.
func retriedUnknown(ctx context.Context, st *redisstore.Store, in intent.Intent) (int, error) {
	log, err := st.Notifications(ctx, in.ICCID)
	if err != nil {
		return 0, fmt.Errorf("notification log %s: %w", in.ICCID, err)
	}
	n := 0
	for _, e := range log {
		if e.ID == in.ID && e.Status == "retried_unknown" {
			n++
		}
	}
	return n, nil
}

// checkDeadLetters holds ESIM_DLQ to the planted bad events: each one
// answered 200 is there, and nothing else is.
func (v *verdict) checkDeadLetters(dlq []storedMsg, bad []*Sent) {
	deliberate := map[string]bool{}
	for _, s := range bad {
		if s.acked.Load() {
			deliberate[s.Key] = true
		}
	}
	v.DeliberateBad = len(deliberate)
	other := 0
	for _, m := range dlq {
		v.DeadLetters++
		key := stream.DedupeKey(m.Headers())
		if deliberate[key] && strings.Contains(string(m.Data()), "chaosBad") {
			delete(deliberate, key)
			continue
		}
		other++
		v.addCapped(other, CheckDLQ, "%s dead letter not planted: %s (%s)", m.Subject(), m.Data(), m.Headers().Get(stream.HeaderError))
	}
	v.addTotal(other, CheckDLQ, "... %d dead letters not planted")
	for key := range deliberate {
		v.add(CheckDLQ, "planted bad event %s answered 200 but not dead-lettered", key)
	}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("%#v", v)
	}
	return string(b)
}
