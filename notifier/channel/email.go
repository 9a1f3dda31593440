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
	"slices"
	"strconv"
	"strings"
	"time"

	gomail "github.com/wneessen/go-mail"
	"github.com/wneessen/go-mail/smtp"
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
	// context bounds connecting.
	Timeout time.Duration
	// MaxIdle is how many sessions are kept open between messages (0: the
	// default, 4; negative: none, a connection per message); IdleTimeout how long one is kept unused (default 30s, well under
	// the 5 minutes after which RFC 5321 lets a server hang up).
	MaxIdle     int
	IdleTimeout time.Duration
}

// Email sends messages over SMTP, text and HTML. Connections are kept and
// reused for the messages that follow (see pool): connecting, EHLO, TLS and
// AUTH cost several round trips that a busy notifier need not pay per message.
type Email struct {
	host     string
	from     *mail.Address
	domain   string
	opts     []gomail.Option
	user     string
	pass     string
	implicit bool // smtps: TLS from the first byte
	tls      *tls.Config
	dial     func(ctx context.Context, network, address string) (net.Conn, error)
	pool     pool
}

// ErrCleartextAuth is a server that would take the password in clear over a
// network: it offers only PLAIN or LOGIN authentication, without TLS, and is
// not on loopback. Nothing is sent; the configuration has to change.
var ErrCleartextAuth = errors.New("the server offers only PLAIN/LOGIN authentication without TLS and is not on loopback: " +
	"the password would cross the network in clear (use smtps://, a server that offers STARTTLS, or a relay on loopback)")

// NewEmail checks the options and returns the channel; it does not connect
// (Check does).
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
	if o.IdleTimeout <= 0 {
		o.IdleTimeout = 30 * time.Second
	}
	switch {
	case o.MaxIdle == 0:
		o.MaxIdle = 4
	case o.MaxIdle < 0:
		o.MaxIdle = 0
	}
	tlsConf := &tls.Config{MinVersion: tls.VersionTLS12}
	if o.TLS != nil {
		tlsConf = o.TLS.Clone()
	}
	tlsConf.ServerName = u.Hostname()
	e := &Email{host: u.Hostname(), from: from, domain: domain, tls: tlsConf, dial: o.Dial,
		pool: pool{maxIdle: o.MaxIdle, idleTimeout: o.IdleTimeout}}
	if e.dial == nil {
		d := &net.Dialer{}
		e.dial = d.DialContext
	}
	// The connection is always dialled here (dialTLS), so that implicit TLS
	// uses the same dialer as the rest; go-mail only speaks SMTP over it.
	e.opts = []gomail.Option{gomail.WithTimeout(o.Timeout), gomail.WithTLSConfig(tlsConf), gomail.WithDialContextFunc(e.dialTLS)}
	port := 587
	switch u.Scheme {
	case "smtp":
		policy := gomail.TLSMandatory
		if loopback(u.Hostname()) {
			policy = gomail.TLSOpportunistic
		}
		e.opts = append(e.opts, gomail.WithTLSPolicy(policy))
	case "smtp+insecure":
		e.opts = append(e.opts, gomail.WithTLSPolicy(gomail.TLSOpportunistic))
	case "smtps":
		port, e.implicit = 465, true
		e.opts = append(e.opts, gomail.WithSSL())
	default:
		return nil, fmt.Errorf("email: scheme %q: want smtp, smtps or smtp+insecure", u.Scheme)
	}
	if p := u.Port(); p != "" {
		if port, err = strconv.Atoi(p); err != nil {
			return nil, fmt.Errorf("email: port %q: %w", p, err)
		}
	}
	e.opts = append(e.opts, gomail.WithPort(port))
	if u.User != nil {
		e.user = u.User.Username()
		e.pass, _ = u.User.Password()
	}
	return e, nil
}

// dialTLS opens a connection to the server, in TLS from the first byte for
// smtps.
func (e *Email) dialTLS(ctx context.Context, network, address string) (net.Conn, error) {
	conn, err := e.dial(ctx, network, address)
	if err != nil || !e.implicit {
		return conn, err
	}
	tc := tls.Client(conn, e.tls)
	if err := tc.HandshakeContext(ctx); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("TLS handshake: %w", err)
	}
	return tc, nil
}

// connect opens a session ready for mail: connected, greeted, in TLS as the
// URL asks, authenticated when it carries credentials.
func (e *Email) connect(ctx context.Context) (*session, error) {
	opts := e.opts
	if e.user != "" {
		opts = append(opts[:len(opts):len(opts)], gomail.WithSMTPAuthCustom(&authChooser{user: e.user, pass: e.pass, host: e.host}))
	}
	gm, err := gomail.NewClient(e.host, opts...)
	if err != nil {
		return nil, Permanent(fmt.Errorf("email: client: %w", err))
	}
	sc, err := gm.DialToSMTPClientWithContext(ctx)
	if err != nil {
		if errors.Is(err, ErrCleartextAuth) {
			return nil, Permanent(fmt.Errorf("email: %s: %w", e.host, err))
		}
		return nil, fmt.Errorf("email: connect to %s: %w", e.host, err)
	}
	return &session{gm: gm, sc: sc}, nil
}

// Check connects, greets, starts TLS and authenticates as a send would, and
// keeps the session for the next message. Its error says which step failed;
// one wrapping ErrCleartextAuth is a configuration no retry can fix.
func (e *Email) Check(ctx context.Context) error {
	s, err := e.connect(ctx)
	if err != nil {
		return err
	}
	e.pool.put(s)
	return nil
}

// Close ends the idle sessions (QUIT). Sends may follow; they connect anew.
func (e *Email) Close() error {
	e.pool.closeIdle()
	return nil
}

// authChooser picks the strongest mechanism the server offers, and PLAIN or
// LOGIN only under TLS or to loopback: the rule of RFC 4954, section 4. (go-mail's
// auto-discovery refuses PLAIN without TLS even to loopback, and its own
// loopback allowance goes by the name the server gives, not ours.)
type authChooser struct {
	user, pass, host string
	smtp.Auth
}

func (a *authChooser) Start(server *smtp.ServerInfo) (string, []byte, error) {
	plainOK := server.TLS || loopback(a.host)
	switch offered := func(m string) bool { return slices.Contains(server.Auth, m) }; {
	case offered("SCRAM-SHA-256"):
		a.Auth = smtp.ScramSHA256Auth(a.user, a.pass)
	case offered("SCRAM-SHA-1"):
		a.Auth = smtp.ScramSHA1Auth(a.user, a.pass)
	case offered("CRAM-MD5"):
		a.Auth = smtp.CRAMMD5Auth(a.user, a.pass)
	case (offered("PLAIN") || offered("LOGIN")) && !plainOK:
		return "", nil, ErrCleartextAuth
	case offered("PLAIN"):
		a.Auth = smtp.PlainAuth("", a.user, a.pass, a.host, true)
	case offered("LOGIN"):
		a.Auth = smtp.LoginAuth(a.user, a.pass, a.host, true)
	default:
		return "", nil, fmt.Errorf("the server offers no AUTH mechanism esimflow speaks (offered: %q)", server.Auth)
	}
	return a.Auth.Start(server)
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
	return e.send(ctx, msg)
}

// send sends msg on a kept session, or a new one. A kept session that the
// server has closed meanwhile fails its NOOP before MAIL: nothing was sent on
// it, and the message goes on a new session at once.
func (e *Email) send(ctx context.Context, msg *gomail.Msg) error {
	for {
		s, reused := e.pool.get()
		if s == nil {
			var err error
			if s, err = e.connect(ctx); err != nil {
				return err
			}
		}
		err := s.gm.SendWithSMTPClient(s.sc, msg)
		var se *gomail.SendError
		switch {
		case err == nil:
			e.pool.put(s)
			return nil
		case msg.IsDelivered():
			// Accepted; only the RSET after it failed. The session is
			// not to be trusted again.
			s.close()
			return nil
		case reused && errors.As(err, &se) && se.Reason == gomail.ErrConnCheck:
			s.close()
			continue
		}
		s.close()
		return classifySMTP(err)
	}
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
