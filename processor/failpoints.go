//go:build failpoints

package processor

import (
	"context"
	"errors"

	"github.com/esimflow/esimflow/shared/consume"
	"github.com/esimflow/esimflow/shared/event"
	"github.com/esimflow/esimflow/shared/failpoint"
	"github.com/esimflow/esimflow/shared/store"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// The chaos suite's crash points and planted bugs (see shared/failpoint and
// chaos/bugs_test.go), as decorators New installs around the store, the
// intent publisher and the handlers; only builds with the failpoints tag
// have them. Crash points:
//
//	after-store-write    a merge's state write is stored
//	after-intent-puback  an intent is acked by JetStream
//	after-seen-mark      the handler decided to ack, before the ack
//
// Planted bugs, each breaking what a check of the suite guards:
//
//	bug-ack-first          acks before the work (invariant 4)
//	bug-seen-first         marks seen before the merge (invariant 4)
//	bug-dead-letter-usage  dead-letters valid data-usage events (invariant 6)
//	bug-leak               keeps 256 KiB per batch

// plantedStore crashes after state writes and marks keys seen when they are
// checked (bug-seen-first).
type plantedStore struct{ Store }

func failpointStore(s Store) Store { return plantedStore{s} }

func (s plantedStore) UpdateOrder(ctx context.Context, orderNo string, fn func(*store.Order) (bool, error)) (store.Order, error) {
	o, err := s.Store.UpdateOrder(ctx, orderNo, fn)
	if err == nil {
		failpoint.Inject("after-store-write")
	}
	return o, err
}

func (s plantedStore) UpdateProfile(ctx context.Context, iccid string, fn func(*store.Profile) (bool, error)) (store.Profile, error) {
	p, err := s.Store.UpdateProfile(ctx, iccid, fn)
	if err == nil {
		failpoint.Inject("after-store-write")
	}
	return p, err
}

func (s plantedStore) WriteState(ctx context.Context, snap *store.Snapshot, orderNos, iccids []string) (store.Lost, error) {
	lost, err := s.Store.WriteState(ctx, snap, orderNos, iccids)
	if err == nil {
		failpoint.Inject("after-store-write")
	}
	return lost, err
}

func (s plantedStore) Seen(ctx context.Context, key string) (bool, error) {
	seen, err := s.Store.Seen(ctx, key)
	if err == nil && !seen && failpoint.Enabled("bug-seen-first") {
		err = s.Store.MarkSeen(ctx, key)
	}
	return seen, err
}

func (s plantedStore) SeenMany(ctx context.Context, keys []string) ([]bool, error) {
	seen, err := s.Store.SeenMany(ctx, keys)
	if err != nil || !failpoint.Enabled("bug-seen-first") {
		return seen, err
	}
	return seen, s.markUnseen(ctx, keys, seen)
}

func (s plantedStore) SeenAndReadState(ctx context.Context, keys []string, snap *store.Snapshot, orderNos, iccids []string) ([]bool, error) {
	seen, err := s.Store.SeenAndReadState(ctx, keys, snap, orderNos, iccids)
	if err != nil || !failpoint.Enabled("bug-seen-first") {
		return seen, err
	}
	return seen, s.markUnseen(ctx, keys, seen)
}

// markUnseen marks seen the keys a check found unseen (bug-seen-first).
func (s plantedStore) markUnseen(ctx context.Context, keys []string, seen []bool) error {
	var mark []string
	for i, k := range keys {
		if !seen[i] {
			mark = append(mark, k)
		}
	}
	if len(mark) == 0 {
		return nil
	}
	return s.Store.MarkSeenMany(ctx, mark)
}

// plantedPublisher crashes after an intent's PubAck.
type plantedPublisher struct{ Publisher }

func failpointPublisher(p Publisher) Publisher { return plantedPublisher{p} }

func (p plantedPublisher) PublishMsg(ctx context.Context, msg *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	ack, err := p.Publisher.PublishMsg(ctx, msg, opts...)
	if err == nil {
		failpoint.Inject("after-intent-puback")
	}
	return ack, err
}

func (p plantedPublisher) PublishMsgAsync(msg *nats.Msg, opts ...jetstream.PublishOpt) (jetstream.PubAckFuture, error) {
	f, err := p.Publisher.PublishMsgAsync(msg, opts...)
	if err != nil {
		return nil, err
	}
	return newPlantedFuture(f), nil
}

// plantedFuture crashes once its PubAck arrives, before whoever awaits it
// sees it. The future resolves, with a PubAck or an error (the async
// publish timeout bounds it), so its goroutine ends.
type plantedFuture struct {
	jetstream.PubAckFuture
	ok  chan *jetstream.PubAck
	err chan error
}

func newPlantedFuture(f jetstream.PubAckFuture) *plantedFuture {
	pf := &plantedFuture{PubAckFuture: f, ok: make(chan *jetstream.PubAck, 1), err: make(chan error, 1)}
	go func() {
		select {
		case a := <-f.Ok():
			failpoint.Inject("after-intent-puback")
			pf.ok <- a
		case err := <-f.Err():
			pf.err <- err
		}
	}()
	return pf
}

func (f *plantedFuture) Ok() <-chan *jetstream.PubAck { return f.ok }
func (f *plantedFuture) Err() <-chan error            { return f.err }

func failpointHandler(h consume.Handler) consume.Handler {
	return func(ctx context.Context, m *consume.Msg) consume.Outcome {
		if failpoint.Enabled("bug-ack-first") {
			_ = m.Ack()
		}
		if o, ok := plantedDeadLetter(m); ok {
			return o
		}
		o := h(ctx, m)
		if o.Acked() {
			failpoint.Inject("after-seen-mark")
		}
		return o
	}
}

func failpointBatchHandler(h consume.BatchHandler) consume.BatchHandler {
	return func(ctx context.Context, msgs []*consume.Msg) []consume.Outcome {
		if failpoint.Enabled("bug-ack-first") {
			for _, m := range msgs {
				_ = m.Ack()
			}
		}
		if failpoint.Enabled("bug-leak") {
			failpoint.Retain(256 << 10)
		}
		outs := make([]consume.Outcome, len(msgs))
		var rest []*consume.Msg
		var at []int
		for i, m := range msgs {
			if o, ok := plantedDeadLetter(m); ok {
				outs[i] = o
				continue
			}
			rest, at = append(rest, m), append(at, i)
		}
		if len(rest) > 0 {
			for j, o := range h(ctx, rest) {
				outs[at[j]] = o
			}
		}
		failpoint.Inject("after-seen-mark")
		return outs
	}
}

// plantedDeadLetter is bug-dead-letter-usage: a valid data-usage event below
// 80 % fails as if it were malformed.
func plantedDeadLetter(m *consume.Msg) (consume.Outcome, bool) {
	if !failpoint.Enabled("bug-dead-letter-usage") {
		return consume.Outcome{}, false
	}
	ev, err := event.Decode(m.Data())
	if err != nil || ev.Type != event.DataUsage || ev.UsagePercent >= 80 {
		return consume.Outcome{}, false
	}
	return consume.Fail(consume.Permanent(errors.New("planted bug (chaos suite)"))).For(ev.Type.Token()), true
}
