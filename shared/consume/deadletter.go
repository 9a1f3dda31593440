package consume

import (
	"context"
	"fmt"
	"strconv"

	"github.com/esimflow/esimflow/shared/stream"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Publisher publishes a message and waits for its PubAck. A
// jetstream.JetStream is one.
type Publisher interface {
	PublishMsg(ctx context.Context, msg *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error)
}

// Letter is a message on its way to ESIM_DLQ: the original, and why it died.
type Letter struct {
	Subject    string      // the original's subject
	Data       []byte      // the original's body, unchanged
	Header     nats.Header // the original's headers, kept for a re-drive
	Seq        uint64      // the original's stream sequence
	Deliveries uint64      // how many times it was delivered
	Key        string      // its dedupe key ("" when it has none): the Nats-Msg-Id of a re-drive
	Cause      string      // the error
}

// DeadLetterID is the Nats-Msg-Id of the dead letter of sequence seq of the
// stream of kind ("events", "notify"): whoever writes it — a handler, or the
// processor's max-deliveries advisory listener for an event whose instance
// died — JetStream keeps one.
func DeadLetterID(kind string, seq uint64) string {
	return "dlq:" + kind + ":" + strconv.FormatUint(seq, 10)
}

// WriteDeadLetter publishes l to the dead-letter subject of kind, with the
// one header schema of both streams (the stream.Header* constants), and
// waits for the PubAck.
func WriteDeadLetter(ctx context.Context, pub Publisher, names stream.Names, kind string, l Letter) error {
	dl := nats.NewMsg(names.DLQSubject(kind))
	dl.Data = l.Data
	for k, v := range l.Header {
		dl.Header[k] = v
	}
	if l.Key != "" {
		// The dead letter's own Nats-Msg-Id is its id: keep the original's
		// key beside it, for inspection and re-drive.
		dl.Header.Set(stream.HeaderDedupeKey, l.Key)
	}
	dl.Header.Set(stream.HeaderError, l.Cause)
	dl.Header.Set(stream.HeaderSubject, l.Subject)
	dl.Header.Set(stream.HeaderDeliveries, strconv.FormatUint(l.Deliveries, 10))
	dl.Header.Set(stream.HeaderSequence, strconv.FormatUint(l.Seq, 10))
	if _, err := pub.PublishMsg(ctx, dl, jetstream.WithMsgID(DeadLetterID(kind, l.Seq))); err != nil {
		return fmt.Errorf("publish dead letter of %s %d: %w", kind, l.Seq, err)
	}
	return nil
}
