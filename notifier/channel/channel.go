// Package channel holds the ways a message reaches a customer: email over
// SMTP, SMS through a Twilio-compatible REST API, WhatsApp template messages
// through a WhatsApp Business Cloud API–compatible one, a signed webhook to
// the reseller's backend, and the console. Each channel sends one rendered
// Message; the notifier decides which channels and when.
//
// Contract of every channel's Send:
//   - safe for concurrent use;
//   - carries Message.ID, the intent id, as the idempotency key the protocol
//     offers (email Message-ID, SMS Idempotency-Key header, webhook-id), so a
//     receiver can drop the copy that the one unavoidable window of
//     docs/design.md, Invariants 5 may produce;
//   - returns nil only once the peer accepted the message, and otherwise an
//     error that IsPermanent classifies: permanent (a 4xx that cannot succeed,
//     a recipient the channel cannot address) goes to the dead letters at
//     once; anything else (timeouts, 5xx, 429, refused connections) is retried
//     after at least RetryAfter.
package channel

import (
	"context"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/esimflow/esimflow/shared/escape"
)

// Names of the channels, as routing, contacts and the notification log use them.
const (
	EmailName    = "email"
	SMSName      = "sms"
	WhatsAppName = "whatsapp"
	WebhookName  = "webhook"
	ConsoleName  = "console"
)

// Names lists every channel, for messages that name them.
var Names = []string{WhatsAppName, SMSName, EmailName, WebhookName, ConsoleName}

// Known reports whether name is a channel esimflow has.
func Known(name string) bool {
	switch name {
	case EmailName, SMSName, WhatsAppName, WebhookName, ConsoleName:
		return true
	}
	return false
}

// Message is one rendered customer message.
type Message struct {
	ID            string // intent id: also the idempotency key for channels that carry one
	Kind          string
	ICCID         string
	OrderNo       string
	TransactionID string
	Threshold     int
	Template      string // the template kind it was rendered from (low_data, data_exhausted, …)
	Locale        string // the locale the message was rendered in
	To            Recipient
	Subject       string
	Text          string
	HTML          string // empty: email sends text only
	SMS           string // short form for SMS; empty: Text
	// Vars are the template's variables, rendered for the locale (name,
	// iccid, threshold, left, activation_code, install_url, topup_url, …):
	// what a channel that sends its own templates (WhatsApp) fills them with.
	Vars map[string]string
	// Inline are images the HTML refers to as cid:<ContentID> (the QR code
	// of an activation); email embeds them, other channels ignore them.
	Inline []Inline
}

// Inline is an image embedded in an email.
type Inline struct {
	ContentID   string // without angle brackets, as the HTML's cid: URL names it
	ContentType string // image/png
	Data        []byte
}

// Recipient is the customer, as far as the contact tells.
type Recipient struct {
	Name  string `json:"name,omitempty"`
	Email string `json:"email,omitempty"`
	Phone string `json:"phone,omitempty"`
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
func (c *Console) Name() string { return ConsoleName }

// Send writes the message as one line.
func (c *Console) Send(_ context.Context, m Message) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	// Fields come from provider events: escaped, a newline or an escape
	// sequence in one cannot forge a line or drive the terminal.
	line := fmt.Sprintf("%s NOTIFY id=%s kind=%s iccid=%s subject=%q text=%q\n",
		time.Now().UTC().Format(time.RFC3339), escape.Line(m.ID), escape.Line(m.Kind), escape.Line(m.ICCID),
		m.Subject, oneLine(m.Text))
	if _, err := io.WriteString(c.w, line); err != nil {
		return fmt.Errorf("console: %w", err)
	}
	return nil
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
