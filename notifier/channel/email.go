package channel

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/mail"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"
)

// EmailOptions configure the email channel.
type EmailOptions struct {
	// URL is one of
	//   - smtp://[user:pass@]host[:port] (port 587): STARTTLS is required,
	//     with a verified certificate, so a server that does not offer it (or
	//     a network that strips the offer) gets no mail and no password in
	//     clear. To a loopback host (localhost, 127.0.0.0/8, ::1: a local
	//     relay) STARTTLS is used when offered, and plain AUTH is allowed
	//     without it;
	//   - smtps://[user:pass@]host[:port] (port 465): implicit TLS;
	//   - smtp+insecure://[user:pass@]host[:port] (port 587): STARTTLS only
	//     when the server offers it, mail in clear otherwise — for a relay on
	//     a trusted network that has no TLS. Credentials still never travel in
	//     clear to a host other than loopback (the AUTH mechanisms refuse).
	// A user and password make the client authenticate, with the strongest
	// mechanism both sides support.
	URL string
	// From is the sender, "care@shop.example" or "Shop <care@shop.example>".
	From string
	// TLS, when set, is the client's TLS configuration (tests trust their own
	// CA with it); nil means the system's roots.
	TLS *tls.Config
	// Dial, when set, opens the connections (a SOCKS dialer, or a test
	// server standing in for the URL's host); nil means a net.Dialer.
	Dial func(ctx context.Context, network, address string) (net.Conn, error)
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
		return nil, errors.New("email: want smtp://[user:pass@]host[:port], smtps://… or smtp+insecure://…")
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
		policy := gomail.TLSMandatory
		if loopback(u.Hostname()) {
			policy = gomail.TLSOpportunistic
		}
		opts = append(opts, gomail.WithTLSPolicy(policy))
	case "smtp+insecure":
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSOpportunistic))
	case "smtps":
		port = 465
		opts = append(opts, gomail.WithSSL())
	default:
		return nil, fmt.Errorf("email: scheme %q: want smtp, smtps or smtp+insecure", u.Scheme)
	}
	if p := u.Port(); p != "" {
		if port, err = strconv.Atoi(p); err != nil {
			return nil, fmt.Errorf("email: port %q: %w", p, err)
		}
	}
	opts = append(opts, gomail.WithPort(port))
	if o.Dial != nil {
		opts = append(opts, gomail.WithDialContextFunc(o.Dial))
	}
	if u.User != nil {
		pass, _ := u.User.Password()
		auth := gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover)
		if u.Scheme == "smtp" && loopback(u.Hostname()) {
			// A local relay: the password does not cross a network, so
			// PLAIN and LOGIN may go without TLS.
			auth = gomail.WithOpportunisticSMTPAuth(gomail.SMTPAuthSCRAMSHA256PLUS, gomail.SMTPAuthSCRAMSHA256,
				gomail.SMTPAuthSCRAMSHA1PLUS, gomail.SMTPAuthSCRAMSHA1, gomail.SMTPAuthCramMD5,
				gomail.SMTPAuthPlainNoEnc, gomail.SMTPAuthLoginNoEnc)
		}
		opts = append(opts, auth, gomail.WithUsername(u.User.Username()), gomail.WithPassword(pass))
	}
	return &Email{host: u.Hostname(), from: from, domain: domain, opts: opts}, nil
}

// loopback reports whether host names this machine: mail to it does not
// cross a network.
func loopback(host string) bool {
	if ip, err := netip.ParseAddr(host); err == nil {
		return ip.Unmap().IsLoopback()
	}
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	return host == "localhost" || strings.HasSuffix(host, ".localhost")
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
	if err := embedInline(msg, m); err != nil {
		return err
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
