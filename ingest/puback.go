package ingest

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/valyala/fastjson"
)

// jsPublisher is jetstream.JetStream's PublishMsg for the messages ingest
// stores, with the PubAck read by fastjson: the client's encoding/json
// decoding was 5 % of ingest's CPU under full load and 6 allocations a
// request (docs/adr/0014, addendum 2). What it does is the client's
// (jetstream.publishMsg in nats.go v1.55): one request, retried on no
// responders (a stream between leaders) as often and as far apart as the
// client's defaults, and the same answers — an ack is a PubAck only with
// its stream, an API error comes back as a *jetstream.APIError (the 413
// path reads its code), anything else is jetstream.ErrInvalidJSAck. A
// publish with options goes to the client itself.
type jsPublisher struct {
	js      jetstream.JetStream
	nc      *nats.Conn
	parsers fastjson.ParserPool
}

var _ Publisher = (*jsPublisher)(nil)

func newJSPublisher(js jetstream.JetStream) *jsPublisher {
	return &jsPublisher{js: js, nc: js.Conn()}
}

func (p *jsPublisher) PublishMsg(ctx context.Context, msg *nats.Msg, opts ...jetstream.PublishOpt) (*jetstream.PubAck, error) {
	if _, ok := ctx.Deadline(); len(opts) > 0 || !ok {
		return p.js.PublishMsg(ctx, msg, opts...)
	}
	resp, err := p.nc.RequestMsgWithContext(ctx, msg)
	for r := 0; errors.Is(err, nats.ErrNoResponders) && r < jetstream.DefaultPubRetryAttempts; r++ {
		select {
		case <-ctx.Done():
		case <-time.After(jetstream.DefaultPubRetryWait):
		}
		resp, err = p.nc.RequestMsgWithContext(ctx, msg)
	}
	if errors.Is(err, nats.ErrNoResponders) {
		return nil, jetstream.ErrNoStreamResponse
	}
	if err != nil {
		return nil, err
	}
	return p.ack(resp.Data)
}

// ack reads a PubAck as the client's pubAckResponse would decode it.
func (p *jsPublisher) ack(data []byte) (*jetstream.PubAck, error) {
	parser := p.parsers.Get()
	defer p.parsers.Put(parser)
	v, err := parser.ParseBytes(data)
	if err != nil || v.Type() != fastjson.TypeObject {
		return nil, jetstream.ErrInvalidJSAck
	}
	if e := v.Get("error"); e != nil && e.Type() != fastjson.TypeNull {
		if e.Type() != fastjson.TypeObject {
			return nil, jetstream.ErrInvalidJSAck
		}
		return nil, fmt.Errorf("nats: %w", &jetstream.APIError{
			Code:        e.GetInt("code"),
			ErrorCode:   jetstream.ErrorCode(e.GetUint("err_code")),
			Description: string(e.GetStringBytes("description")),
		})
	}
	stream := v.GetStringBytes("stream")
	if len(stream) == 0 {
		return nil, jetstream.ErrInvalidJSAck
	}
	return &jetstream.PubAck{
		Stream:    string(stream),
		Sequence:  v.GetUint64("seq"),
		Duplicate: v.GetBool("duplicate"),
		Domain:    string(v.GetStringBytes("domain")),
		Value:     string(v.GetStringBytes("val")),
	}, nil
}
