package provider

import (
	"context"
	"crypto"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // SNS SignatureVersion 1 is SHA1withRSA, as AWS defines it
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/esimflow/esimflow/shared/event"
	"github.com/valyala/fastjson"
)

// snsAdapter reads Telna's webhooks, which come through AWS SNS: every
// request is an SNS envelope signed with RSA by a certificate SNS names
// (SigningCertURL); the first one is a SubscriptionConfirmation whose
// SubscribeURL must be visited; notifications carry Telna's event as the
// envelope's Message, read by Telna's mapping file.
type snsAdapter struct {
	inner  *mapped
	hosts  []string
	client *http.Client
	certs  *certCache
}

func newSNS(inner *mapped, opts Options) *snsAdapter {
	return &snsAdapter{inner: inner, hosts: opts.hosts(), client: opts.client(), certs: &certCache{byURL: map[string]*x509.Certificate{}}}
}

func (a *snsAdapter) Name() string    { return a.inner.name }
func (a *snsAdapter) Version() string { return "sns-" + a.inner.version }

// snsEnvelope is an SNS message as posted to an HTTPS subscriber.
type snsEnvelope struct {
	Type             string `json:"Type"`
	MessageID        string `json:"MessageId"`
	Token            string `json:"Token"`
	TopicArn         string `json:"TopicArn"`
	Subject          string `json:"Subject"`
	Message          string `json:"Message"`
	SubscribeURL     string `json:"SubscribeURL"`
	Timestamp        string `json:"Timestamp"`
	SignatureVersion string `json:"SignatureVersion"`
	Signature        string `json:"Signature"`
	SigningCertURL   string `json:"SigningCertURL"`
}

func parseEnvelope(body []byte) (snsEnvelope, error) {
	var env snsEnvelope
	if err := json.Unmarshal(body, &env); err != nil {
		return env, err
	}
	if env.Type == "" {
		return env, errors.New("not an SNS message: no Type")
	}
	return env, nil
}

// Decode reads a Notification's Message by Telna's mapping; the event id
// is the SNS MessageId where the message names none.
func (a *snsAdapter) Decode(dc event.Decoder, body []byte) []Decoded {
	if !json.Valid(body) {
		return []Decoded{{Event: a.unknown(), Err: event.ErrInvalidJSON}}
	}
	env, err := parseEnvelope(body)
	if err != nil {
		return []Decoded{{Event: a.unknown(), Err: fmt.Errorf("%w: %w", event.ErrMalformed, err)}}
	}
	if env.Type != "Notification" {
		return []Decoded{{Event: a.unknown()}}
	}
	v, err := fastjson.Parse(env.Message)
	if err != nil {
		return []Decoded{{Event: a.unknown(), Err: fmt.Errorf("%w: SNS Message: %w", event.ErrMalformed, err)}}
	}
	out := a.inner.decodeValue(dc, v)
	for i := range out {
		out[i].Event.Adapter = a.Version()
		if out[i].Event.NotifyID == "" && out[i].Event.Type != event.Unknown {
			out[i].Event.NotifyID = env.MessageID
			if out[i].Err == nil {
				out[i].Err = dc.Check(&out[i].Event)
			}
		}
	}
	return out
}

func (a *snsAdapter) unknown() event.Event {
	return event.Event{Type: event.Unknown, Format: event.FormatAdapter, Provider: a.Name(), Adapter: a.Version()}
}

// Verifier checks every request's SNS signature; the secrets, when given,
// are the topic ARNs accepted (else any topic).
func (a *snsAdapter) Verifier(secrets []string) (Verifier, error) {
	return &snsCheck{a: a, topics: secrets}, nil
}

type snsCheck struct {
	a      *snsAdapter
	topics []string
}

func (c *snsCheck) Verify(r *http.Request, body []byte) error {
	if len(body) == 0 {
		return unverified(ReasonEmptyBody)
	}
	env, err := parseEnvelope(body)
	if err != nil || env.Signature == "" || env.SigningCertURL == "" {
		return unverified(ReasonNoSignature)
	}
	if len(c.topics) > 0 && !slices.Contains(c.topics, env.TopicArn) {
		return unverified(ReasonSignature)
	}
	cert, err := c.a.cert(r.Context(), env.SigningCertURL)
	if err != nil {
		return unverified(ReasonCertificate)
	}
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok {
		return unverified(ReasonCertificate)
	}
	sig, err := base64.StdEncoding.DecodeString(env.Signature)
	if err != nil {
		return unverified(ReasonSignature)
	}
	text, err := stringToSign(env)
	if err != nil {
		return unverified(ReasonSignature)
	}
	var h crypto.Hash
	switch env.SignatureVersion {
	case "1":
		h = crypto.SHA1
	case "2":
		h = crypto.SHA256
	default:
		return unverified(ReasonSignature)
	}
	if err := rsa.VerifyPKCS1v15(pub, h, digest(h, text), sig); err != nil {
		return unverified(ReasonSignature)
	}
	return nil
}

func digest(h crypto.Hash, text []byte) []byte {
	if h == crypto.SHA1 {
		s := sha1.Sum(text) //nolint:gosec // see the import
		return s[:]
	}
	s := sha256.Sum256(text)
	return s[:]
}

// stringToSign is what SNS signs: named fields, each as "Name\nvalue\n", in
// the order AWS documents per message type (Subject only when present).
func stringToSign(env snsEnvelope) ([]byte, error) {
	var b strings.Builder
	add := func(k, v string) { b.WriteString(k + "\n" + v + "\n") }
	switch env.Type {
	case "Notification":
		add("Message", env.Message)
		add("MessageId", env.MessageID)
		if env.Subject != "" {
			add("Subject", env.Subject)
		}
		add("Timestamp", env.Timestamp)
		add("TopicArn", env.TopicArn)
		add("Type", env.Type)
	case "SubscriptionConfirmation", "UnsubscribeConfirmation":
		add("Message", env.Message)
		add("MessageId", env.MessageID)
		add("SubscribeURL", env.SubscribeURL)
		add("Timestamp", env.Timestamp)
		add("Token", env.Token)
		add("TopicArn", env.TopicArn)
		add("Type", env.Type)
	default:
		return nil, fmt.Errorf("SNS Type %q", env.Type)
	}
	return []byte(b.String()), nil
}

// SignSNS signs an SNS envelope as SNS does (SignatureVersion 2) with key:
// what tests and `esimflow webhook test` use to play SNS.
func SignSNS(body []byte, key *rsa.PrivateKey) ([]byte, error) {
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		return nil, err
	}
	m["SignatureVersion"] = "2"
	raw, _ := json.Marshal(m)
	env, err := parseEnvelope(raw)
	if err != nil {
		return nil, err
	}
	text, err := stringToSign(env)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(text)
	sig, err := rsa.SignPKCS1v15(nil, key, crypto.SHA256, sum[:])
	if err != nil {
		return nil, err
	}
	m["Signature"] = base64.StdEncoding.EncodeToString(sig)
	return json.Marshal(m)
}

// allowed reports whether a URL is https on an allowlisted host.
func (a *snsAdapter) allowed(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil || u.Scheme != "https" || u.User != nil {
		return false
	}
	for _, pat := range a.hosts {
		if ok, _ := path.Match(pat, u.Hostname()); ok {
			return true
		}
	}
	return false
}

// maxCertBytes bounds a fetched certificate.
const maxCertBytes = 64 << 10

// cert returns the signing certificate at raw, fetched once and cached:
// only from an allowlisted host, over https.
func (a *snsAdapter) cert(ctx context.Context, raw string) (*x509.Certificate, error) {
	if !a.allowed(raw) {
		return nil, fmt.Errorf("signing certificate %q: not https on an allowed host", raw)
	}
	if c := a.certs.get(raw); c != nil {
		return c, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, raw, nil)
	if err != nil {
		return nil, err
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch signing certificate: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch signing certificate: %s", resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxCertBytes))
	if err != nil {
		return nil, fmt.Errorf("fetch signing certificate: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		return nil, errors.New("signing certificate: not PEM")
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("signing certificate: %w", err)
	}
	if now := time.Now(); now.Before(c.NotBefore) || now.After(c.NotAfter) {
		return nil, errors.New("signing certificate: expired or not yet valid")
	}
	a.certs.put(raw, c)
	return c, nil
}

// certCache keeps fetched certificates by URL; SNS signs with few, so it is
// small, and forgets everything when full.
type certCache struct {
	mu    sync.Mutex
	byURL map[string]*x509.Certificate
}

const maxCachedCerts = 16

func (c *certCache) get(u string) *x509.Certificate {
	c.mu.Lock()
	defer c.mu.Unlock()
	if x := c.byURL[u]; x != nil && time.Now().Before(x.NotAfter) {
		return x
	}
	return nil
}

func (c *certCache) put(u string, x *x509.Certificate) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.byURL) >= maxCachedCerts {
		clear(c.byURL)
	}
	c.byURL[u] = x
}

// Handshake confirms a SubscriptionConfirmation by visiting its
// SubscribeURL, only on an allowlisted host; an UnsubscribeConfirmation is
// answered and kept nowhere. It runs on verified requests only.
func (a *snsAdapter) Handshake(ctx context.Context, body []byte) (bool, error) {
	env, err := parseEnvelope(body)
	if err != nil {
		return false, nil
	}
	switch env.Type {
	case "UnsubscribeConfirmation":
		return true, nil
	case "SubscriptionConfirmation":
	default:
		return false, nil
	}
	if !a.allowed(env.SubscribeURL) {
		return true, fmt.Errorf("SubscribeURL %q: not https on an allowed host (ESIMFLOW_PROVIDERS_SNS_HOSTS)", env.SubscribeURL)
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, env.SubscribeURL, nil)
	if err != nil {
		return true, fmt.Errorf("confirm subscription: %w", err)
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return true, fmt.Errorf("confirm subscription: %w", err)
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxCertBytes))
	if resp.StatusCode/100 != 2 {
		return true, fmt.Errorf("confirm subscription: %s", resp.Status)
	}
	return true, nil
}
