package channel_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/esimflow/esimflow/notifier/channel"
)

type counter struct{ n atomic.Int32 }

func (c *counter) Name() string                                { return "counter" }
func (c *counter) Send(context.Context, channel.Message) error { c.n.Add(1); return nil }

func TestLimit(t *testing.T) {
	c := &counter{}
	if channel.Limit(c, 0) != channel.Sender(c) {
		t.Error("rate 0 wrapped the channel; want it unlimited")
	}
	l := channel.Limit(c, 1)
	if l.Name() != "counter" {
		t.Errorf("Name = %q", l.Name())
	}
	// The burst is one second's worth: one send now, the next is a second away.
	if err := l.Send(context.Background(), message()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Millisecond)
	defer cancel()
	err := l.Send(ctx, message())
	if err == nil || channel.IsPermanent(err) || channel.RetryAfter(err) <= 0 {
		t.Errorf("send over the limit: %v (retry after %v); want a transient error with a wait", err, channel.RetryAfter(err))
	}
	if got := c.n.Load(); got != 1 {
		t.Errorf("%d sends went through, want 1", got)
	}
}
