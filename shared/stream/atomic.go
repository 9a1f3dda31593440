package stream

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nuid"
)

// Atomic batch publishing (nats-server 2.12, ADR-50): the messages of one
// batch are stored all or none, and a single-replica file stream fsyncs the
// whole batch once where it fsyncs every other message on its own under
// SyncAlways (the embedded server's default). Group commits build on it:
// the NATS KV store's (docs/adr/0017) and BatchPublisher's.

// Atomic batch headers.
const (
	batchIDHeader     = "Nats-Batch-Id"
	batchSeqHeader    = "Nats-Batch-Sequence"
	batchCommitHeader = "Nats-Batch-Commit"
)

// MaxAtomicBatch bounds the messages of one atomic batch, well below the
// server's default limit of 1000.
const MaxAtomicBatch = 500

// AtomicBatches reports whether the server nc is connected to takes atomic
// batches: 2.12 or newer.
func AtomicBatches(nc *nats.Conn) bool {
	v := strings.TrimPrefix(nc.ConnectedServerVersion(), "v")
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return false
	}
	major, err1 := strconv.Atoi(parts[0])
	minor, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil {
		return false
	}
	return major > 2 || major == 2 && minor >= 12
}

// atomicAck is the server's answer to a batch's commit.
type atomicAck struct {
	Stream string `json:"stream"`
	Domain string `json:"domain"`
	Seq    uint64 `json:"seq"`
	Count  int    `json:"count"`
	Error  *struct {
		Code        int    `json:"code"`
		ErrCode     int    `json:"err_code"`
		Description string `json:"description"`
	} `json:"error"`
}

// AtomicAck is a committed batch: its stream, and the sequence its last
// message was stored under. The server stores a committed batch under
// consecutive sequences (its commit holds the stream's isolation lock
// throughout), so message i of n is at Last-(n-1-i).
type AtomicAck struct {
	Stream, Domain string
	Last           uint64
}

// PublishAtomic publishes msgs, all to one stream that allows atomic
// publishing, as one atomic batch and waits for its commit. It sets the
// batch headers on msgs, which must be the caller's own. An error means the
// batch was refused — nothing of it is stored — or that its answer was
// lost, when its outcome is unknown: a caller that publishes the messages
// again must make a second store of them harmless (a Nats-Msg-Id within the
// duplicate window, an expected last sequence).
func PublishAtomic(ctx context.Context, nc *nats.Conn, msgs []*nats.Msg) (AtomicAck, error) {
	n := len(msgs)
	if n == 0 || n > MaxAtomicBatch {
		return AtomicAck{}, fmt.Errorf("atomic batch of %d: want 1 to %d messages", n, MaxAtomicBatch)
	}
	id := nuid.Next()
	for i, m := range msgs {
		if m.Header == nil {
			m.Header = nats.Header{}
		}
		m.Header.Set(batchIDHeader, id)
		m.Header.Set(batchSeqHeader, strconv.Itoa(i+1))
	}
	for _, m := range msgs[:n-1] {
		if err := nc.PublishMsg(m); err != nil {
			return AtomicAck{}, fmt.Errorf("atomic batch of %d: publish to %s: %w", n, m.Subject, err)
		}
	}
	last := msgs[n-1]
	last.Header.Set(batchCommitHeader, "1")
	if _, ok := ctx.Deadline(); !ok {
		// As jetstream bounds a publish whose context has none.
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
	}
	resp, err := nc.RequestMsgWithContext(ctx, last)
	if err != nil {
		return AtomicAck{}, fmt.Errorf("atomic batch of %d: commit: %w", n, err)
	}
	var ack atomicAck
	if err := json.Unmarshal(resp.Data, &ack); err != nil {
		return AtomicAck{}, fmt.Errorf("atomic batch of %d: decode answer: %w", n, err)
	}
	if ack.Error != nil {
		return AtomicAck{}, fmt.Errorf("atomic batch of %d: %s (%d)", n, ack.Error.Description, ack.Error.ErrCode)
	}
	if ack.Count != n || ack.Seq < uint64(n) {
		return AtomicAck{}, fmt.Errorf("atomic batch of %d: server stored %d, last at %d", n, ack.Count, ack.Seq)
	}
	return AtomicAck{Stream: ack.Stream, Domain: ack.Domain, Last: ack.Seq}, nil
}
