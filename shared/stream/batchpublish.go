package stream

import (
	"context"
	"fmt"
	"maps"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// BatchPublisher publishes to one stream and group-commits the publishes
// callers make at the same time (docs/adr/0017): a publisher that finds
// no commit under way publishes at once, alone; publishers that come
// meanwhile queue, and the first of them publishes the queue as one atomic
// batch when the lead passes to it. On a single-replica stream fsynced
// before every ack (the embedded server's SyncAlways) the batch shares one
// fsync where each message had its own.
//
// Every caller still gets its own PubAck only once its message is stored.
// A batch the server refuses — a Nats-Msg-Id already in the duplicate
// window refuses the whole batch, as does a full stream or a message too
// large — or whose answer is lost is published again message by message,
// each under its own caller's context, so each caller gets the answer it
// would have had alone: a duplicate's PubAck, a full stream's error. Only
// messages with a Nats-Msg-Id are batched, which makes that second publish
// of a batch that was in fact stored a duplicate, not a second copy; the
// rest, messages to other streams, messages with publish options, and every
// message when the stream does not allow atomic publishing (a server older
// than 2.12, Debian's 2.9.10), are published alone as before.
//
// It is safe for concurrent use: the concurrency is what it batches.
type BatchPublisher struct {
	js      jetstream.JetStream
	stream  string
	filters []string // the stream's subjects
	atomic  bool     // the stream allows atomic publishing
	group   Group[*nats.Msg, *jetstream.PubAck]

	batched, batches atomic.Int64 // messages stored in batches, and the batches: for tests
}

// NewBatchPublisher returns a publisher for the stream name, which must
// exist; it batches only if the stream allows atomic publishing.
func NewBatchPublisher(ctx context.Context, js jetstream.JetStream, name string) (*BatchPublisher, error) {
	s, err := js.Stream(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("batch publisher: stream %s: %w", name, err)
	}
	cfg := s.CachedInfo().Config
	p := &BatchPublisher{js: js, stream: name, filters: cfg.Subjects, atomic: cfg.AllowAtomicPublish}
	p.group = Group[*nats.Msg, *jetstream.PubAck]{
		Max: MaxAtomicBatch,
		Key: func(m *nats.Msg) string { return m.Header.Get(jetstream.MsgIDHeader) },
		Alone: func(ctx context.Context, m *nats.Msg) (*jetstream.PubAck, error) {
			return p.js.PublishMsg(ctx, m)
		},
		Batch: p.publishBatch,
	}
	return p, nil
}

// Batching reports whether concurrent publishes share atomic batches.
func (p *BatchPublisher) Batching() bool { return p.atomic }

// PublishMsg publishes msg, alone or in a batch, and returns its PubAck once
// it is stored.
func (p *BatchPublisher) PublishMsg(ctx context.Context, msg *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	if !p.batchable(msg, opts) {
		return p.js.PublishMsg(ctx, msg, opts...)
	}
	return p.group.Commit(ctx, msg)
}

// asyncTimeout bounds a PublishMsgAsync, as jetstream bounds a publish
// whose context has none.
const asyncTimeout = 5 * time.Second

// PublishMsgAsync publishes msg in the background, alone or in a batch; the
// future settles once it is stored or refused. Publishes a caller makes in
// a row without awaiting each (the processor's intents of a batch of
// events) go out together.
func (p *BatchPublisher) PublishMsgAsync(msg *nats.Msg, opts ...jetstream.PublishOpt) (jetstream.PubAckFuture, error) {
	if !p.batchable(msg, opts) {
		return p.js.PublishMsgAsync(msg, opts...)
	}
	f := &pubFuture{msg: msg, ok: make(chan *jetstream.PubAck, 1), err: make(chan error, 1)}
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), asyncTimeout)
		defer cancel()
		if ack, err := p.PublishMsg(ctx, msg); err != nil {
			f.err <- err
		} else {
			f.ok <- ack
		}
	}()
	return f, nil
}

// pubFuture is PublishMsgAsync's jetstream.PubAckFuture.
type pubFuture struct {
	msg *nats.Msg
	ok  chan *jetstream.PubAck
	err chan error
}

func (f *pubFuture) Ok() <-chan *jetstream.PubAck { return f.ok }
func (f *pubFuture) Err() <-chan error            { return f.err }
func (f *pubFuture) Msg() *nats.Msg               { return f.msg }

// batchable reports whether msg may share a batch.
func (p *BatchPublisher) batchable(msg *nats.Msg, opts []jetstream.PublishOpt) bool {
	return p.atomic && len(opts) == 0 && msg.Header.Get(jetstream.MsgIDHeader) != "" && p.covers(msg.Subject)
}

// publishBatch stores msgs as one atomic batch and returns their PubAcks,
// each sequence counted back from the batch's last.
func (p *BatchPublisher) publishBatch(ctx context.Context, msgs []*nats.Msg) ([]*jetstream.PubAck, error) {
	batch := make([]*nats.Msg, len(msgs))
	for i, m := range msgs {
		// A copy: the batch headers must not reach a second publish of
		// the caller's message.
		batch[i] = &nats.Msg{Subject: m.Subject, Data: m.Data, Header: maps.Clone(m.Header)}
	}
	ack, err := PublishAtomic(ctx, p.js.Conn(), batch)
	if err != nil {
		return nil, err
	}
	p.batched.Add(int64(len(batch)))
	p.batches.Add(1)
	acks := make([]*jetstream.PubAck, len(batch))
	last := len(batch) - 1
	for i := range acks {
		acks[i] = &jetstream.PubAck{Stream: ack.Stream, Domain: ack.Domain, Sequence: ack.Last - uint64(last-i)}
	}
	return acks, nil
}

// covers reports whether the stream's subjects take subject.
func (p *BatchPublisher) covers(subject string) bool {
	for _, f := range p.filters {
		if subjectMatches(f, subject) {
			return true
		}
	}
	return false
}

// subjectMatches reports whether a literal subject matches a filter with
// the wildcards * (one token) and > (the rest, one token or more).
func subjectMatches(filter, subject string) bool {
	for {
		ft, frest, fmore := strings.Cut(filter, ".")
		st, srest, smore := strings.Cut(subject, ".")
		switch {
		case ft == ">":
			return true
		case ft != "*" && ft != st:
			return false
		case !fmore || !smore:
			return fmore == smore
		}
		filter, subject = frest, srest
	}
}
