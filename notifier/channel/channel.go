// Package channel holds the ways a message reaches a customer. Each channel
// sends one rendered Message; the notifier decides which and when.
package channel

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
)

// Message is one rendered customer message.
type Message struct {
	ID      string // intent id: also the idempotency key for channels that carry one
	Kind    string
	ICCID   string
	Subject string
	Text    string
}

// Console prints each message on one line: the all-in-one default, which needs
// no contact and no account anywhere.
type Console struct {
	mu sync.Mutex
	w  io.Writer
}

// NewConsole returns a console channel writing to w.
func NewConsole(w io.Writer) *Console { return &Console{w: w} }

// Name is the channel's name in the notification log.
func (c *Console) Name() string { return "console" }

// Send writes the message as one line.
func (c *Console) Send(_ context.Context, m Message) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	line := fmt.Sprintf("%s NOTIFY id=%s kind=%s iccid=%s subject=%q text=%q\n",
		time.Now().UTC().Format(time.RFC3339), m.ID, m.Kind, m.ICCID, m.Subject, oneLine(m.Text))
	if _, err := io.WriteString(c.w, line); err != nil {
		return fmt.Errorf("console: %w", err)
	}
	return nil
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
