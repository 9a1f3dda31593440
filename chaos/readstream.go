package chaos

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// readAttempts bounds readStream's tries with a consumer.
const readAttempts = 5

// storedMsg is what the checks read of a stored message: a jetstream.Msg
// from a consumer, or a rawMsg fetched by sequence.
type storedMsg interface {
	Data() []byte
	Headers() nats.Header
	Subject() string
	Metadata() (*jetstream.MsgMetadata, error)
}

// readStream returns every message of a stream, oldest first. It reads with
// an ordered consumer and tries again with a new one when a read fails: on a
// cluster, the consumer is created on one server and its first pull can reach
// another before the consumer's interest has (nats: no responders), or land in
// a leader change. After a rolling restart that interest has been seen to stay
// missing for minutes while the JetStream API answered (seed 202 on 2.15.2),
// so the last resort reads message by message through the API.
func readStream(ctx context.Context, js jetstream.JetStream, name string) ([]storedMsg, error) {
	var err error
	for range readAttempts {
		var msgs []storedMsg
		if msgs, err = readStreamOnce(ctx, js, name); err == nil {
			return msgs, nil
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(2 * time.Second):
		}
	}
	msgs, errBySeq := readStreamBySeq(ctx, js, name)
	if errBySeq != nil {
		return nil, fmt.Errorf("%w; by sequence: %w", err, errBySeq)
	}
	return msgs, nil
}

// readStreamOnce returns every message of a stream, oldest first, through an
// ordered consumer.
func readStreamOnce(ctx context.Context, js jetstream.JetStream, name string) ([]storedMsg, error) {
	s, err := js.Stream(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", name, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("stream %s info: %w", name, err)
	}
	if info.State.Msgs == 0 {
		return nil, nil
	}
	cons, err := s.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return nil, fmt.Errorf("stream %s reader: %w", name, err)
	}
	// An ordered consumer that resets mid-read (a missed heartbeat, a leader
	// change) can hand over a stretch of the stream twice: keep each
	// sequence once, or the checks see events duplicated and as many lost
	// (seed 202 on 2.9.10: 594 and 594, all of them in the stream).
	var out []storedMsg
	have := make(map[uint64]bool, info.State.Msgs)
	for uint64(len(out)) < info.State.Msgs {
		batch, err := cons.Fetch(500, jetstream.FetchMaxWait(5*time.Second))
		if err != nil {
			return nil, fmt.Errorf("read %s: %w", name, err)
		}
		n := 0
		for m := range batch.Messages() {
			meta, err := m.Metadata()
			if err != nil {
				return nil, fmt.Errorf("read %s: %w", name, err)
			}
			if seq := meta.Sequence.Stream; !have[seq] {
				have[seq] = true
				out = append(out, m)
				n++
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return nil, fmt.Errorf("read %s: %w", name, err)
		}
		if n == 0 {
			return nil, fmt.Errorf("read %s: %d of %d messages, then nothing new", name, len(out), info.State.Msgs)
		}
	}
	slices.SortFunc(out, func(a, b storedMsg) int { return cmp.Compare(seqOf(a), seqOf(b)) })
	return out, nil
}

// seqOf is a stored message's stream sequence (0 if it has none).
func seqOf(m storedMsg) uint64 {
	meta, err := m.Metadata()
	if err != nil {
		return 0
	}
	return meta.Sequence.Stream
}

// readStreamBySeq returns every message of a stream, oldest first, one
// JetStream API request per sequence: slower than a consumer, but served by
// whichever server the client talks to, as the stream's info is.
func readStreamBySeq(ctx context.Context, js jetstream.JetStream, name string) ([]storedMsg, error) {
	s, err := js.Stream(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("stream %s: %w", name, err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("stream %s info: %w", name, err)
	}
	var out []storedMsg
	if info.State.Msgs == 0 {
		return out, nil
	}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue // deleted: the stream has a gap there
		}
		if err != nil {
			return nil, fmt.Errorf("read %s at %d: %w", name, seq, err)
		}
		out = append(out, rawMsg{m})
	}
	return out, nil
}

// rawMsg is a message fetched by sequence, read as a consumer's would be.
type rawMsg struct{ m *jetstream.RawStreamMsg }

func (r rawMsg) Data() []byte         { return r.m.Data }
func (r rawMsg) Headers() nats.Header { return r.m.Header }
func (r rawMsg) Subject() string      { return r.m.Subject }
func (r rawMsg) Metadata() (*jetstream.MsgMetadata, error) {
	return &jetstream.MsgMetadata{
		Sequence:  jetstream.SequencePair{Stream: r.m.Sequence},
		Timestamp: r.m.Time,
	}, nil
}
