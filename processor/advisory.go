package processor

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"

	"github.com/esimflow/esimflow/shared/consume"
	"github.com/esimflow/esimflow/shared/store"
	"github.com/esimflow/esimflow/shared/stream"
	"github.com/nats-io/nats.go"
)

// MaxDeliveriesSubject is where the server announces that the durable
// processor consumer gave up on an event: its last allowed delivery was
// neither acked nor terminated (the instance holding it died, or could not
// write the dead letter).
func MaxDeliveriesSubject(n stream.Names) string {
	return "$JS.EVENT.ADVISORY.CONSUMER.MAX_DELIVERIES." + n.Stream(stream.Events) + "." + n.Consumer(stream.ProcessorConsumer)
}

// maxDeliveriesAdvisory is the part of the server's advisory the listener reads.
type maxDeliveriesAdvisory struct {
	Stream     string `json:"stream"`
	Consumer   string `json:"consumer"`
	StreamSeq  uint64 `json:"stream_seq"`
	Deliveries uint64 `json:"deliveries"`
}

// advisories is the safety net of docs/design.md, Invariants 6: an event whose
// deliveries ran out without a dead letter gets one here, so nothing
// silently disappears.
type advisories struct {
	key     func(hdr nats.Header, data []byte) string // the dead letter's dedupe key
	streams Streams
	store   store.SeenSet
	pub     Publisher
	names   stream.Names
	metrics *metrics
	log     *slog.Logger
}

// listen subscribes in a queue group, so one instance handles each advisory,
// until ctx ends.
func (a *advisories) listen(ctx context.Context, sub Subscriber) error {
	subj := MaxDeliveriesSubject(a.names)
	s, err := sub.QueueSubscribe(subj, a.names.Consumer(stream.ProcessorConsumer), func(m *nats.Msg) { a.handle(ctx, m) })
	if err != nil {
		return fmt.Errorf("subscribe %s: %w", subj, err)
	}
	<-ctx.Done()
	_ = s.Unsubscribe()
	return nil
}

func (a *advisories) handle(ctx context.Context, m *nats.Msg) {
	var adv maxDeliveriesAdvisory
	if err := json.Unmarshal(m.Data, &adv); err != nil || adv.StreamSeq == 0 {
		a.log.Error("unreadable max-deliveries advisory", "data", string(m.Data), "err", err)
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), opTimeout)
	defer cancel()
	if err := a.deadLetter(ctx, adv); err != nil {
		a.log.Error("max deliveries reached and no dead letter written", "seq", adv.StreamSeq, "err", err)
	}
}

func (a *advisories) deadLetter(ctx context.Context, adv maxDeliveriesAdvisory) error {
	events, err := a.streams.Stream(ctx, a.names.Stream(stream.Events))
	if err != nil {
		return fmt.Errorf("stream %s: %w", a.names.Stream(stream.Events), err)
	}
	raw, err := events.GetMsg(ctx, adv.StreamSeq)
	if err != nil {
		return fmt.Errorf("get event %d: %w", adv.StreamSeq, err)
	}
	key := a.key(raw.Header, raw.Data)
	// An instance that died after marking the event seen but before its ack
	// left nothing undone: no dead letter for an applied event. When the
	// store cannot say, the dead letter is written: a spare one is harmless
	// (its re-drive finds the event seen), a missing one loses the event.
	if seen, err := a.store.Seen(ctx, key); err == nil && seen {
		a.log.Info("max deliveries reached for an event already applied", "seq", adv.StreamSeq)
		return nil
	}
	cause := fmt.Sprintf("max deliveries (%d) reached without an ack: the instance holding the event stopped or could not finish it", adv.Deliveries)
	if err := consume.WriteDeadLetter(ctx, a.pub, a.names, deadLetterKind, consume.Letter{Subject: raw.Subject, Data: raw.Data,
		Header: raw.Header, Seq: adv.StreamSeq, Deliveries: adv.Deliveries, Key: key, Cause: cause}); err != nil {
		return err
	}
	a.metrics.deadLetters.Inc()
	a.log.Warn("event dead-lettered after max deliveries", "seq", adv.StreamSeq, "subject", raw.Subject, "deliveries", adv.Deliveries)
	return nil
}
