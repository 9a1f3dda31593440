package chaos

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/esimflow/esimflow/shared/natstest"
	"github.com/nats-io/nats.go/jetstream"
)

// TestReadStreamBySeqMatchesConsumer shows the last-resort reader returns
// what the ordered consumer does: same messages, order, headers, sequences,
// with a deleted message's gap skipped.
func TestReadStreamBySeqMatchesConsumer(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	srv := natstest.StartEmbedded(t)
	js, err := jetstream.New(srv.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	s, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "READ_TEST", Subjects: []string{"read.test.>"}, Storage: jetstream.MemoryStorage})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		if _, err := js.Publish(ctx, fmt.Sprintf("read.test.%d", i%3), fmt.Appendf(nil, `{"n":%d}`, i), jetstream.WithMsgID(fmt.Sprint("id-", i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeleteMsg(ctx, 7); err != nil {
		t.Fatal(err)
	}
	viaConsumer, err := readStreamOnce(ctx, js, "READ_TEST")
	if err != nil {
		t.Fatal(err)
	}
	bySeq, err := readStreamBySeq(ctx, js, "READ_TEST")
	if err != nil {
		t.Fatal(err)
	}
	if len(viaConsumer) != 19 || len(bySeq) != len(viaConsumer) {
		t.Fatalf("read %d by consumer and %d by sequence, want 19 each", len(viaConsumer), len(bySeq))
	}
	for i := range bySeq {
		a, b := viaConsumer[i], bySeq[i]
		am, _ := a.Metadata()
		bm, _ := b.Metadata()
		if string(a.Data()) != string(b.Data()) || a.Subject() != b.Subject() ||
			a.Headers().Get("Nats-Msg-Id") != b.Headers().Get("Nats-Msg-Id") ||
			am.Sequence.Stream != bm.Sequence.Stream || !am.Timestamp.Equal(bm.Timestamp) {
			t.Fatalf("message %d differs: consumer %s %s seq %d, by sequence %s %s seq %d",
				i, a.Subject(), a.Data(), am.Sequence.Stream, b.Subject(), b.Data(), bm.Sequence.Stream)
		}
	}
}
