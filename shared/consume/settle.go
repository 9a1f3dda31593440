package consume

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/esimflow/esimflow/shared/stream"
	"github.com/esimflow/esimflow/shared/telemetry"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/trace"
)

// This file is the consumers' whole protocol: the handler decides, and only
// settle acks, naks, terminates and writes dead letters. Ack last (see
// docs/design.md, "Invariants", 4) holds because a handler returns Ack only
// once the message's effects are stored, and nothing here acks anything else.

// settleTimeout bounds writing a dead letter.
const settleTimeout = 10 * time.Second

// errNoDecision is the cause of a message a single-message handler left Alone.
var errNoDecision = errors.New("handler decided nothing")

// handleOne runs h on one message, again while it holds, and settles it.
func (p *Pipeline) handleOne(ctx context.Context, stop <-chan struct{}, raw jetstream.Msg, h Handler) {
	m, ok := p.open(ctx, raw)
	if !ok {
		return
	}
	defer m.span.End()
	p.settle(ctx, m, p.decide(ctx, stop, m, h))
}

// handleBatch runs bh on a batch, then settles each message: those the batch
// decided at once, those it left Alone after h decides them, concurrently, as
// each held message keeps itself in progress.
func (p *Pipeline) handleBatch(ctx context.Context, stop <-chan struct{}, raws []jetstream.Msg, bh BatchHandler, h Handler) {
	msgs := make([]*Msg, 0, len(raws))
	links := make([]trace.Link, 0, len(raws))
	for _, raw := range raws {
		if m, ok := p.open(ctx, raw); ok {
			defer m.span.End()
			msgs = append(msgs, m)
			links = append(links, trace.Link{SpanContext: m.span.SpanContext()})
		}
	}
	if len(msgs) == 0 {
		return
	}
	bctx, span := p.tracer().Start(ctx, p.Span+" batch", trace.WithLinks(links...))
	outs := bh(bctx, msgs)
	span.End()
	var rest sync.WaitGroup
	for i, m := range msgs {
		if i >= len(outs) || outs[i].verdict == alone {
			rest.Go(func() { p.settle(ctx, m, p.decide(ctx, stop, m, h)) })
			continue
		}
		p.settle(ctx, m, outs[i])
	}
	rest.Wait()
}

// open reads a message's metadata and starts its span, which continues the
// trace its headers carry. A message without metadata is not a JetStream
// delivery: it is terminated.
func (p *Pipeline) open(ctx context.Context, raw jetstream.Msg) (*Msg, bool) {
	meta, err := raw.Metadata()
	if err != nil {
		p.Log.Error("message without metadata", "subject", raw.Subject(), "err", err)
		_ = raw.Term()
		return nil, false
	}
	_, span := p.tracer().Start(telemetry.Extract(ctx, raw.Headers()), p.Span, trace.WithSpanKind(trace.SpanKindConsumer))
	return &Msg{Msg: raw, Meta: meta, span: span}, true
}

// decide runs h, and runs it again each time a hold ends with what the
// message needs answering.
func (p *Pipeline) decide(ctx context.Context, stop <-chan struct{}, m *Msg, h Handler) Outcome {
	o := h(m.Traced(ctx), m)
	for o.verdict == hold && p.hold(ctx, stop, m, o.cause) {
		o = h(m.Traced(ctx), m)
	}
	return o
}

// hold keeps m in progress until Ready reports true, without spending its
// deliveries — an outage is not the message's fault, and dead-lettering
// everything in flight during a long one would be — and reports whether to
// run the handler again. It gives up when stop closes (the service stops;
// settle then retries the message as failed).
func (p *Pipeline) hold(ctx context.Context, stop <-chan struct{}, m *Msg, cause error) bool {
	if p.Ready == nil {
		return false
	}
	p.Log.Warn("holding message until what it needs answers", "seq", m.Seq(), "err", cause)
	// At once: the failed attempts may have used much of AckWait already.
	_ = m.InProgress()
	wait, lastProgress := 250*time.Millisecond, time.Now()
	for {
		t := time.NewTimer(wait)
		select {
		case <-stop:
			t.Stop()
			return false
		case <-t.C:
		}
		if p.Ready(ctx) {
			return true
		}
		// Well inside AckWait, so the server does not hand the message to
		// another instance (and count a delivery) while it is held here.
		if time.Since(lastProgress) > stream.AckWait/3 {
			_ = m.InProgress()
			lastProgress = time.Now()
		}
		wait = min(2*wait, 2*time.Second)
	}
}

// settle carries out an outcome: the only place a message is acked, nak'ed,
// terminated or dead-lettered.
func (p *Pipeline) settle(ctx context.Context, m *Msg, o Outcome) {
	ctx, cancel := context.WithTimeout(ctx, settleTimeout)
	defer cancel()
	last := m.Meta.NumDelivered >= uint64(p.MaxDeliver)
	s := Settled{Outcome: o, Result: o.Label, Err: o.cause}
	switch o.verdict {
	case ack:
		if err := m.Ack(); err != nil {
			// The effects are stored: a redelivery finds them done.
			p.Log.Warn("ack failed", "seq", m.Seq(), "err", err)
		}
	case wait:
		if !last {
			_ = m.NakWithDelay(o.after)
			s.Result = ResultWait
			break
		}
		// The server would not redeliver a nak on the last delivery: the
		// wait ends here, in the dead letters, not in silence.
		s.Err = Permanent(fmt.Errorf("deliveries exhausted while waiting (%w)", o.cause))
		s.Result = p.deadLetter(ctx, m, s.Err)
	case dead:
		s.Result = p.deadLetter(ctx, m, o.cause)
	default: // fail, and a hold that ended without the handler running again
		if o.verdict == alone {
			s.Err = errNoDecision
		}
		if errors.Is(s.Err, ErrPermanent) || last {
			s.Result = p.deadLetter(ctx, m, s.Err)
			break
		}
		p.Log.Warn("message failed, will retry", "seq", m.Seq(), "deliveries", m.Meta.NumDelivered, "err", s.Err)
		_ = m.NakWithDelay(max(Backoff(m.Meta.NumDelivered), o.after))
		s.Result = ResultRetry
	}
	if p.Observe != nil {
		p.Observe(ctx, m, s)
	}
}

// deadLetter writes m's dead letter and terminates m, and returns the
// result. A dead letter that cannot be written leaves the message to
// redelivery rather than lose it; on its last delivery the processor's
// max-deliveries advisory listener writes the dead letter instead.
func (p *Pipeline) deadLetter(ctx context.Context, m *Msg, cause error) string {
	key := m.Headers().Get(jetstream.MsgIDHeader)
	if p.Key != nil {
		key = p.Key(m.Headers(), m.Data())
	}
	err := WriteDeadLetter(ctx, p.Publisher, p.Names, p.Kind, Letter{Subject: m.Subject(), Data: m.Data(), Header: m.Headers(),
		Seq: m.Seq(), Deliveries: m.Meta.NumDelivered, Key: key, Cause: cause.Error()})
	if err != nil {
		p.Log.Error("dead letter failed, will retry", "seq", m.Seq(), "err", err)
		_ = m.NakWithDelay(Backoff(m.Meta.NumDelivered))
		return ResultRetry
	}
	p.Log.Warn("dead-lettered", "seq", m.Seq(), "subject", m.Subject(), "deliveries", m.Meta.NumDelivered, "err", cause)
	_ = m.Term()
	return ResultDeadLetter
}
