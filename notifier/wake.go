package notifier

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/esimflow/esimflow/shared/consume"
	"github.com/esimflow/esimflow/shared/intent"
	"github.com/esimflow/esimflow/shared/store"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// WakeConn is the core NATS connection wake-ups travel on (a *nats.Conn).
type WakeConn interface {
	Publish(subj string, data []byte) error
	QueueSubscribe(subj, queue string, cb nats.MsgHandler) (*nats.Subscription, error)
}

// headerWoken marks the copy of a waiting intent that a wake-up published.
const headerWoken = "Esimflow-Woken"

// waker is event-driven waiting (docs/design.md, "Waiting", ADR 12). A
// message that cannot go out yet — no contact, or a lower warning still
// under way — is parked in the store under the keys it waits for, and stays
// un-acked in ESIM_NOTIFY with its retry as before. Whoever stores such a
// thing (the contact API, the processor's order links, the end of a lower
// warning) announces its key; one notifier instance (a queue group) hears
// it, re-publishes each message parked under the key as a copy marked
// headerWoken, and unparks them. The copy goes through Handle like any
// intent — the intent's claim keeps it to one send — and is acked whatever
// it ends in: the original is the one that retries and dead-letters, and is
// acked as already done once the copy sent. So nothing waits on a lost
// wake-up or a dead instance longer than the original's retry.
type waker struct {
	conn    WakeConn // nil: no wake-ups, retries alone
	subject string
	queue   string
	parking interface {
		store.Parking
		store.BatchParking
	}
	pub Publisher
	ttl time.Duration
	log *slog.Logger
}

// parked is a message as the store keeps it while it waits.
type parked struct {
	Subject string          `json:"subject"`
	Data    json.RawMessage `json:"data"`
}

// enabled reports whether wake-ups are on.
func (w *waker) enabled() bool { return w.conn != nil }

// park remembers m under each key. A failure costs latency only (the
// message's retry still comes): logged, not returned.
func (w *waker) park(ctx context.Context, in intent.Intent, m *consume.Msg, keys ...string) {
	if w.conn == nil {
		return
	}
	body, err := json.Marshal(parked{Subject: m.Subject(), Data: m.Data()})
	if err == nil {
		for _, k := range keys {
			if err = w.parking.Park(ctx, k, in.ID, body, w.ttl); err != nil {
				break
			}
		}
	}
	if err != nil {
		w.log.Warn("waiting message not parked; its retry finds it", "id", in.ID, "err", err)
	}
}

// announce publishes keys as stored.
func (w *waker) announce(keys ...string) {
	if w.conn == nil || len(keys) == 0 {
		return
	}
	if err := w.conn.Publish(w.subject, intent.EncodeWake(keys)); err != nil {
		w.log.Warn("wake-up not announced; waiting messages find it on their retry", "keys", keys, "err", err)
	}
}

// listen hears wake-ups until ctx ends; the returned stop unsubscribes.
func (w *waker) listen(ctx context.Context) (stop func(), err error) {
	if w.conn == nil {
		return func() {}, nil
	}
	sub, err := w.conn.QueueSubscribe(w.subject, w.queue, func(msg *nats.Msg) {
		keys, err := intent.DecodeWake(msg.Data)
		if err != nil {
			w.log.Warn("undecodable wake-up ignored", "err", err)
			return
		}
		if len(keys) > 1 {
			// A batch's wake-ups (markBatch): what is parked under them is
			// read in one round trip; most have nothing.
			w.wakeMany(ctx, keys)
			return
		}
		for _, k := range keys {
			if err := w.wake(ctx, k); err != nil {
				w.log.Warn("wake-up not carried out; the waiting messages find it on their retry", "key", k, "err", err)
			}
		}
	})
	if err != nil {
		return nil, fmt.Errorf("subscribe %s: %w", w.subject, err)
	}
	return func() { _ = sub.Unsubscribe() }, nil
}

// wake unparks the messages parked under key, then re-publishes them. In
// that order: a copy is handled within milliseconds and parks itself again
// if it still waits, which a later unpark would undo. One that could not be
// re-published is parked again.
func (w *waker) wake(ctx context.Context, key string) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	msgs, err := w.parking.Parked(ctx, key)
	if err != nil {
		return err
	}
	return w.release(ctx, key, msgs)
}

// wakeMany is wake for each of keys, with one read of what is parked.
func (w *waker) wakeMany(ctx context.Context, keys []string) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	parked, err := w.parking.ParkedMany(ctx, keys)
	if err != nil {
		w.log.Warn("wake-ups not carried out; the waiting messages find them on their retry", "keys", keys, "err", err)
		return
	}
	for i, k := range keys {
		if err := w.release(ctx, k, parked[i]); err != nil {
			w.log.Warn("wake-up not carried out; the waiting messages find it on their retry", "key", k, "err", err)
		}
	}
}

// release unparks and re-publishes msgs, parked under key.
func (w *waker) release(ctx context.Context, key string, msgs map[string][]byte) error {
	if len(msgs) == 0 {
		return nil
	}
	ids := make([]string, 0, len(msgs))
	for id := range msgs {
		ids = append(ids, id)
	}
	if err := w.parking.Unpark(ctx, key, ids...); err != nil {
		return err
	}
	var errs []error
	for id, body := range msgs {
		var p parked
		if err := json.Unmarshal(body, &p); err != nil || p.Subject == "" {
			continue // unreadable: nothing to wake
		}
		out := nats.NewMsg(p.Subject)
		out.Data = p.Data
		out.Header.Set(headerWoken, key)
		// A new Nats-Msg-Id each time: the stream's duplicate window would
		// drop a second wake-up of the same message within two minutes.
		msgID := id + "/wake/" + strconv.FormatInt(time.Now().UnixNano(), 36)
		if _, err := w.pub.PublishMsg(ctx, out, jetstream.WithMsgID(msgID)); err != nil {
			errs = append(errs, fmt.Errorf("re-publish %s: %w", id, err))
			if err := w.parking.Park(ctx, key, id, body, w.ttl); err != nil {
				errs = append(errs, err)
			}
		}
	}
	w.log.Debug("woken", "key", key, "messages", len(msgs))
	return errors.Join(errs...)
}

// woken reports whether m is a copy a wake-up published.
func woken(m *consume.Msg) bool { return m.Headers().Get(headerWoken) != "" }
