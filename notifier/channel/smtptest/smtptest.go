// Package smtptest runs a real SMTP server in-process (emersion/go-smtp) that
// records what it receives — envelope, headers, the text and HTML parts, the
// Message-ID, whether TLS and AUTH were used — for tests of the email
// channel, the way httptest serves HTTP.
package smtptest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math/big"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Security is how the server offers TLS.
type Security int

const (
	Plain    Security = iota // no TLS at all
	STARTTLS                 // plain connection, STARTTLS offered
	Implicit                 // TLS from the first byte (smtps)
)

// Options configure a Server.
type Options struct {
	Security Security
	// User and Password, when set, are required (AUTH PLAIN) before MAIL;
	// a Plain server offers AUTH without TLS.
	User, Password string
	// Reject, when set, is asked about each recipient; an error (an
	// *smtp.SMTPError for a chosen code) refuses it.
	Reject func(rcpt string) error
}

// Mail is one received message.
type Mail struct {
	From      string
	To        []string
	Header    mail.Header
	MessageID string // as in the header, with angle brackets
	Subject   string // decoded (RFC 2047)
	Text      string // the text/plain part, decoded, with \n line ends
	HTML      string // the text/html part, decoded, with \n line ends
	// Inline are the parts with a Content-ID (embedded images), decoded,
	// by Content-ID without angle brackets.
	Inline   map[string]Part
	TLS      bool   // the session was encrypted
	AuthUser string // who authenticated, "" for nobody
	Raw      []byte
}

// Part is one decoded MIME part.
type Part struct {
	ContentType string
	Data        []byte
}

// Server is a running SMTP server.
type Server struct {
	Addr   string
	opts   Options
	srv    *smtp.Server
	client *tls.Config

	mu   sync.Mutex
	mail []Mail
}

// Start runs a server on a random loopback port until the test ends.
func Start(t testing.TB, opts Options) *Server {
	t.Helper()
	s := &Server{opts: opts}
	srv := smtp.NewServer(smtp.BackendFunc(func(c *smtp.Conn) (smtp.Session, error) {
		_, isTLS := c.TLSConnectionState()
		return &session{s: s, tls: isTLS}, nil
	}))
	srv.Domain = "localhost"
	// A Plain server with a user offers AUTH without TLS, as a careless
	// relay does: the client must be the one that refuses.
	srv.AllowInsecureAuth = opts.Security == Plain
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if opts.Security != Plain {
		serverConf, clientConf := certificate(t)
		srv.TLSConfig, s.client = serverConf, clientConf
		if opts.Security == Implicit {
			ln = tls.NewListener(ln, serverConf)
		}
	}
	s.srv, s.Addr = srv, ln.Addr().String()
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln)
	}()
	t.Cleanup(func() {
		// Closing the listener too: a Close that comes before Serve has
		// registered it would leave Serve accepting forever.
		_ = srv.Close()
		_ = ln.Close()
		<-done
	})
	return s
}

// URL is the ESIMFLOW_SMTP_URL that reaches the server with its security.
func (s *Server) URL() string {
	scheme := "smtp"
	if s.opts.Security == Implicit {
		scheme = "smtps"
	}
	user := ""
	if s.opts.User != "" {
		user = s.opts.User + ":" + s.opts.Password + "@"
	}
	return scheme + "://" + user + s.Addr
}

// ClientTLS is a client configuration that trusts the server's certificate;
// nil for a Plain server.
func (s *Server) ClientTLS() *tls.Config { return s.client }

// Mail returns what the server accepted so far.
func (s *Server) Mail() []Mail {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Mail(nil), s.mail...)
}

type session struct {
	s    *Server
	tls  bool
	user string
	from string
	to   []string
}

func (ss *session) AuthMechanisms() []string {
	if ss.s.opts.User == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (ss *session) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != ss.s.opts.User || pass != ss.s.opts.Password {
			return errors.New("invalid credentials")
		}
		ss.user = user
		return nil
	}), nil
}

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	if ss.s.opts.User != "" && ss.user == "" {
		return smtp.ErrAuthRequired
	}
	ss.from = from
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if ss.s.opts.Reject != nil {
		if err := ss.s.opts.Reject(to); err != nil {
			return err
		}
	}
	ss.to = append(ss.to, to)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	raw, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	m := Mail{From: ss.from, To: ss.to, TLS: ss.tls, AuthUser: ss.user, Raw: raw}
	if err := parse(&m); err != nil {
		return &smtp.SMTPError{Code: 554, EnhancedCode: smtp.EnhancedCode{5, 6, 0}, Message: "unparsable: " + err.Error()}
	}
	ss.s.mu.Lock()
	ss.s.mail = append(ss.s.mail, m)
	ss.s.mu.Unlock()
	return nil
}

func (ss *session) Reset()        { ss.from, ss.to = "", nil }
func (ss *session) Logout() error { return nil }

// parse fills the header, Message-ID and the decoded text and HTML parts.
func parse(m *Mail) error {
	msg, err := mail.ReadMessage(bytes.NewReader(m.Raw))
	if err != nil {
		return err
	}
	m.Header, m.MessageID = msg.Header, msg.Header.Get("Message-Id")
	if m.Subject, err = new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject")); err != nil {
		return fmt.Errorf("subject: %w", err)
	}
	return walk(msg.Header.Get("Content-Type"), msg.Header.Get("Content-Transfer-Encoding"), "", msg.Body, m)
}

func walk(contentType, encoding, contentID string, body io.Reader, m *Mail) error {
	mt, params, err := mime.ParseMediaType(contentType)
	if err != nil {
		return fmt.Errorf("content type %q: %w", contentType, err)
	}
	if strings.HasPrefix(mt, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		for {
			p, err := mr.NextRawPart()
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return err
			}
			if err := walk(p.Header.Get("Content-Type"), p.Header.Get("Content-Transfer-Encoding"), p.Header.Get("Content-Id"), p, m); err != nil {
				return err
			}
		}
	}
	switch strings.ToLower(encoding) {
	case "quoted-printable":
		body = quotedprintable.NewReader(body)
	case "base64":
		body = base64.NewDecoder(base64.StdEncoding, stripNewlines{body})
	}
	b, err := io.ReadAll(body)
	if err != nil {
		return err
	}
	if contentID != "" {
		if m.Inline == nil {
			m.Inline = map[string]Part{}
		}
		m.Inline[strings.Trim(contentID, "<>")] = Part{ContentType: mt, Data: b}
		return nil
	}
	// SMTP lines end in CRLF; tests compare with Go strings.
	text := strings.ReplaceAll(string(b), "\r\n", "\n")
	switch mt {
	case "text/plain":
		m.Text = text
	case "text/html":
		m.HTML = text
	}
	return nil
}

type stripNewlines struct{ r io.Reader }

func (s stripNewlines) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	out := p[:0]
	for _, c := range p[:n] {
		if c != '\r' && c != '\n' {
			out = append(out, c)
		}
	}
	return len(out), err
}

// certificate makes a self-signed certificate for 127.0.0.1 and localhost.
func certificate(t testing.TB) (server, client *tls.Config) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "smtptest"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		DNSNames:     []string{"localhost"},
		IsCA:         true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, MinVersion: tls.VersionTLS12},
		&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
}
