package channel

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net/mail"
	"net/url"
	"strconv"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"
)

// EmailOptions configure the email channel.
type EmailOptions struct {
	// URL is smtp://[user:pass@]host[:port] (port 587, STARTTLS whenever the
	// server offers it) or smtps://[user:pass@]host[:port] (port 465, implicit
	// TLS). A user and password make the client authenticate, with the
	// strongest mechanism both sides support.
	URL string
	// From is the sender, "care@shop.example" or "Shop <care@shop.example>".
	From string
	// TLS, when set, is the client's TLS configuration (tests trust their own
	// CA with it); nil means the system's roots.
	TLS *tls.Config
	// Timeout bounds connecting and each SMTP command (default 15s); the send's
	// context bounds the whole.
	Timeout time.Duration
}

// Email sends messages over SMTP, text and HTML, one connection per message.
type Email struct {
	host   string
	from   *mail.Address
	domain string
	opts   []gomail.Option
}

// NewEmail checks the options and returns the channel; it does not connect.
func NewEmail(o EmailOptions) (*Email, error) {
	u, err := url.Parse(o.URL)
	if err != nil || u.Hostname() == "" {
		return nil, errors.New("email: want smtp://[user:pass@]host[:port] or smtps://…")
	}
	from, err := mail.ParseAddress(o.From)
	if err != nil {
		return nil, fmt.Errorf("email: sender %q: %w", o.From, err)
	}
	_, domain, _ := strings.Cut(from.Address, "@")
	if o.Timeout <= 0 {
		o.Timeout = 15 * time.Second
	}
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12}
	if o.TLS != nil {
		tlsConf = o.TLS.Clone()
	}
	tlsConf.ServerName = u.Hostname()
	opts := []gomail.Option{gomail.WithTimeout(o.Timeout), gomail.WithTLSConfig(tlsConf)}
	port := 587
	switch u.Scheme {
	case "smtp":
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSOpportunistic))
	case "smtps":
		port = 465
		opts = append(opts, gomail.WithSSL())
	default:
		return nil, fmt.Errorf("email: scheme %q: want smtp or smtps", u.Scheme)
	}
	if p := u.Port(); p != "" {
		if port, err = strconv.Atoi(p); err != nil {
			return nil, fmt.Errorf("email: port %q: %w", p, err)
		}
	}
	opts = append(opts, gomail.WithPort(port))
	if u.User != nil {
		pass, _ := u.User.Password()
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover),
			gomail.WithUsername(u.User.Username()), gomail.WithPassword(pass))
	}
	return &Email{host: u.Hostname(), from: from, domain: domain, opts: opts}, nil
}

// Name is the channel's name in the notification log.
func (e *Email) Name() string { return EmailName }

// MessageID is the Message-ID of an intent's email, without angle brackets:
// the same for every attempt, so a mail system that saw the first copy can
// drop the second. Intent ids hold ':', which a Message-ID may not, hence
// the hash.
func MessageID(intentID, domain string) string {
	sum := sha256.Sum256([]byte(intentID))
	return hex.EncodeToString(sum[:16]) + ".esimflow@" + domain
}

// Send delivers one message to m.To.Email.
func (e *Email) Send(ctx context.Context, m Message) error {
	if m.To.Email == "" {
		return Permanent(errors.New("email: the contact has no email address"))
	}
	msg := gomail.NewMsg()
	if err := msg.FromFormat(e.from.Name, e.from.Address); err != nil {
		return Permanent(fmt.Errorf("email: sender: %w", err))
	}
	if err := msg.AddToFormat(m.To.Name, m.To.Email); err != nil {
		return Permanent(fmt.Errorf("email: recipient: %w", err))
	}
	msg.Subject(m.Subject)
	msg.SetDate()
	msg.SetMessageIDWithValue(MessageID(m.ID, e.domain))
	msg.SetGenHeader("Auto-Submitted", "auto-generated")
	msg.SetGenHeader("X-Esimflow-Intent", m.ID)
	msg.SetBodyString(gomail.TypeTextPlain, m.Text)
	if m.HTML != "" {
		msg.AddAlternativeString(gomail.TypeTextHTML, m.HTML)
	}
	client, err := gomail.NewClient(e.host, e.opts...)
	if err != nil {
		return Permanent(fmt.Errorf("email: client: %w", err))
	}
	if err := client.DialAndSendWithContext(ctx, msg); err != nil {
		return classifySMTP(err)
	}
	return nil
}

// classifySMTP makes a 5xx reply to the message (MAIL, RCPT, DATA) permanent;
// a 4xx reply, and failing to connect, greet, start TLS or authenticate, are
// transient: they are about the server, not this message.
func classifySMTP(err error) error {
	err = fmt.Errorf("email: %w", err)
	var se *gomail.SendError
	if errors.As(err, &se) && !se.IsTemp() && se.ErrorCode() >= 500 && se.ErrorCode() < 600 {
		return Permanent(err)
	}
	return err
}
