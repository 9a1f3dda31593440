package ingest

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
)

// TestJSPublisherAck: the PubAcks a server sends read as the client's own
// decoding reads them: an ack only with its stream, an API error as a
// *jetstream.APIError (the stream's size refusal is a 413), anything else
// jetstream.ErrInvalidJSAck.
func TestJSPublisherAck(t *testing.T) {
	var p jsPublisher
	for _, tt := range []struct {
		name, data string
		want       *jetstream.PubAck
		code       jetstream.ErrorCode // an API error's, 0: none
		invalid    bool
	}{
		{name: "stored", data: `{"stream":"ESIM_EVENTS","seq":42}`, want: &jetstream.PubAck{Stream: "ESIM_EVENTS", Sequence: 42}},
		{name: "duplicate, domain", data: `{"stream":"S","domain":"hub","seq":7,"duplicate":true}`, want: &jetstream.PubAck{Stream: "S", Domain: "hub", Sequence: 7, Duplicate: true}},
		{name: "null error", data: `{"error":null,"stream":"S","seq":1}`, want: &jetstream.PubAck{Stream: "S", Sequence: 1}},
		{name: "message too large", data: `{"error":{"code":400,"err_code":10054,"description":"message size exceeds maximum allowed"},"stream":"S","seq":0}`, code: jetstream.JSErrCodeStreamMessageExceedsMaximum},
		{name: "no stream", data: `{"seq":3}`, invalid: true},
		{name: "empty stream", data: `{"stream":"","seq":3}`, invalid: true},
		{name: "error not an object", data: `{"error":"boom","stream":"S"}`, invalid: true},
		{name: "not an object", data: `[1]`, invalid: true},
		{name: "not JSON", data: `+OK`, invalid: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := p.ack([]byte(tt.data))
			switch {
			case tt.invalid:
				if !errors.Is(err, jetstream.ErrInvalidJSAck) || got != nil {
					t.Fatalf("got %+v, %v; want ErrInvalidJSAck", got, err)
				}
			case tt.code != 0:
				var api *jetstream.APIError
				if !errors.As(err, &api) || api.ErrorCode != tt.code || got != nil {
					t.Fatalf("got %+v, %v; want API error %d", got, err, tt.code)
				}
				if tt.code == jetstream.JSErrCodeStreamMessageExceedsMaximum && !tooLargeToStore(err) {
					t.Errorf("%v not read as too large to store", err)
				}
			default:
				if err != nil || *got != *tt.want {
					t.Fatalf("got %+v, %v; want %+v", got, err, tt.want)
				}
			}
		})
	}
}

// BenchmarkPubAck reads one PubAck as jsPublisher does and as the client's
// publish decodes it (encoding/json into its pubAckResponse's shape).
func BenchmarkPubAck(b *testing.B) {
	data := []byte(`{"stream":"bench01ESIM_EVENTS","seq":123456,"duplicate":true}`)
	b.Run("read=fastjson", func(b *testing.B) {
		var p jsPublisher
		b.ReportAllocs()
		for b.Loop() {
			if _, err := p.ack(data); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("read=encoding-json", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var resp struct {
				Type  string              `json:"type"`
				Error *jetstream.APIError `json:"error,omitempty"`
				*jetstream.PubAck
			}
			if err := json.Unmarshal(data, &resp); err != nil || resp.PubAck == nil {
				b.Fatal(err)
			}
		}
	})
}
