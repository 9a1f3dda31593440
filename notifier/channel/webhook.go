package channel

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/esimflow/esimflow/shared/redact"
)

// WebhookOptions configure the signed outbound webhook.
type WebhookOptions struct {
	URL string
	// Secret is a Standard Webhooks secret: "whsec_" and the base64 key.
	Secret string
	// AllowPrivate lets the webhook reach loopback, private, link-local and
	// other non-public addresses, which are refused by default: the URL is
	// configuration, but a DNS answer could still point it inside.
	AllowPrivate bool
	Timeout      time.Duration // default 15s
}

// Webhook posts each message as JSON to the reseller's backend, signed the
// Standard Webhooks way: webhook-id (the intent id, for idempotency),
// webhook-timestamp, and webhook-signature "v1,<base64 HMAC-SHA256 of
// id.timestamp.body>".
type Webhook struct {
	url    string
	key    []byte
	client *http.Client
}

// NewWebhook checks the options and returns the channel.
func NewWebhook(o WebhookOptions) (*Webhook, error) {
	u, err := url.Parse(o.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "" {
		return nil, errors.New("webhook: want an http(s) URL")
	}
	b64, ok := strings.CutPrefix(o.Secret, "whsec_")
	key, err := base64.StdEncoding.DecodeString(b64)
	if !ok || err != nil || len(key) < 16 {
		return nil, errors.New("webhook: secret: want whsec_ followed by at least 16 base64-encoded bytes")
	}
	if ip, err := netip.ParseAddr(u.Hostname()); err == nil && !o.AllowPrivate && !public(ip) {
		return nil, fmt.Errorf("webhook: %s is not a public address (set ESIMFLOW_NOTIFY_WEBHOOK_ALLOW_PRIVATE to allow it)", ip)
	}
	if o.Timeout <= 0 {
		o.Timeout = 15 * time.Second
	}
	return &Webhook{url: o.URL, key: key, client: GuardedClient(o.Timeout, o.AllowPrivate)}, nil
}

// GuardedClient is an HTTP client for URLs that come from configuration but
// resolve through DNS: unless allowPrivate, every connection is refused
// (ErrNotPublic) whose address, after DNS, is not public — checked on the
// address actually dialled, so a name that resolves inside, now or after a
// rebinding, is refused too. It uses no proxy (a proxy would dial for it and
// bypass the check) and follows no redirect (a 3xx is the answer): a
// redirect would carry the request's headers, its token among them, to
// wherever the peer points.
func GuardedClient(timeout time.Duration, allowPrivate bool) *http.Client {
	dialer := &net.Dialer{Timeout: timeout}
	if !allowPrivate {
		dialer.Control = refusePrivate
	}
	transport := &http.Transport{
		Proxy:               nil,
		DialContext:         dialer.DialContext,
		TLSHandshakeTimeout: timeout,
		MaxIdleConnsPerHost: 8,
		IdleConnTimeout:     90 * time.Second,
	}
	return &http.Client{Timeout: timeout, Transport: transport, CheckRedirect: noRedirects}
}

// Name is the channel's name in the notification log.
func (w *Webhook) Name() string { return WebhookName }

// WebhookPayload is the body the webhook posts.
type WebhookPayload struct {
	Type      string      `json:"type"` // "notification.<kind>"
	Timestamp time.Time   `json:"timestamp"`
	Data      WebhookData `json:"data"`
}

// WebhookData is the message, for the reseller to deliver or record.
type WebhookData struct {
	ID            string     `json:"id"` // intent id, also webhook-id
	Kind          string     `json:"kind"`
	ICCID         string     `json:"iccid"`
	OrderNo       string     `json:"orderNo,omitempty"`
	TransactionID string     `json:"transactionId,omitempty"`
	Threshold     int        `json:"threshold,omitempty"`
	Locale        string     `json:"locale,omitempty"`
	Contact       *Recipient `json:"contact,omitempty"`
	Subject       string     `json:"subject"`
	Text          string     `json:"text"`
}

// Send posts the message. Every attempt carries the same webhook-id and a
// fresh timestamp and signature.
func (w *Webhook) Send(ctx context.Context, m Message) error {
	now := time.Now().UTC()
	p := WebhookPayload{Type: "notification." + m.Kind, Timestamp: now, Data: WebhookData{
		ID: m.ID, Kind: m.Kind, ICCID: m.ICCID, OrderNo: m.OrderNo, TransactionID: m.TransactionID,
		Threshold: m.Threshold, Locale: m.Locale, Subject: m.Subject, Text: m.Text,
	}}
	if m.To != (Recipient{}) {
		p.Data.Contact = &m.To
	}
	body, err := json.Marshal(p)
	if err != nil {
		return Permanent(fmt.Errorf("webhook: encode: %w", err))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return Permanent(fmt.Errorf("webhook: %w", redact.Error(err)))
	}
	ts := strconv.FormatInt(now.Unix(), 10)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "esimflow-notifier")
	req.Header.Set("webhook-id", m.ID)
	req.Header.Set("webhook-timestamp", ts)
	req.Header.Set("webhook-signature", "v1,"+Sign(w.key, m.ID, ts, body))
	resp, err := w.client.Do(req)
	if err != nil {
		// The URL's query or userinfo may hold the receiver's key.
		err = fmt.Errorf("webhook: %w", redact.Error(err))
		if errors.Is(err, ErrNotPublic) {
			return Permanent(fmt.Errorf("%w (set ESIMFLOW_NOTIFY_WEBHOOK_ALLOW_PRIVATE to allow it)", err))
		}
		return err
	}
	defer resp.Body.Close()
	return checkResponse("webhook", resp)
}

// Sign is the Standard Webhooks signature: base64 of HMAC-SHA256 over
// "id.timestamp.body" with the secret's key.
func Sign(key []byte, id, timestamp string, body []byte) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + timestamp + "."))
	mac.Write(body)
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// ErrNotPublic is the refusal of a connection to a non-public address.
var ErrNotPublic = errors.New("refused: not a public address")

// refusePrivate is a net.Dialer Control: it runs on the resolved address of
// every connection attempt.
func refusePrivate(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("dial %s: %w", address, ErrNotPublic)
	}
	if !public(ap.Addr()) {
		return fmt.Errorf("dial %s: %w", address, ErrNotPublic)
	}
	return nil
}

// nonPublic are ranges netip's predicates do not cover: "this network",
// shared address space (CGNAT), IETF protocol assignments, documentation and
// benchmarking nets, 6to4 relays, reserved and broadcast; IPv4-compatible
// IPv6 (deprecated, it carries an IPv4 address), site-local (deprecated, the
// old private range), local-use NAT64 and documentation IPv6.
var nonPublic = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("192.0.2.0/24"),
	netip.MustParsePrefix("192.88.99.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("198.51.100.0/24"),
	netip.MustParsePrefix("203.0.113.0/24"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("::/96"),
	netip.MustParsePrefix("fec0::/10"),
	netip.MustParsePrefix("64:ff9b:1::/48"),
	netip.MustParsePrefix("2001:db8::/32"),
}

// Transition prefixes carry an IPv4 address that the packets end up at, or
// pass through: they are as public as what they carry. (IPv4-mapped
// ::ffff:0:0/96 is unmapped before any check.)
var (
	nat64     = netip.MustParsePrefix("64:ff9b::/96") // well-known NAT64: the IPv4 address in the last 32 bits
	sixToFour = netip.MustParsePrefix("2002::/16")    // 6to4: the IPv4 address in bits 16–47
	teredo    = netip.MustParsePrefix("2001::/32")    // Teredo: the server's IPv4 in bits 32–63, the client's inverted in the last 32
)

// public reports whether ip is an ordinary public unicast address.
func public(ip netip.Addr) bool {
	ip = ip.Unmap()
	if !ip.IsValid() || ip.IsLoopback() || ip.IsPrivate() || ip.IsUnspecified() || ip.IsLinkLocalUnicast() ||
		ip.IsLinkLocalMulticast() || ip.IsInterfaceLocalMulticast() || ip.IsMulticast() {
		return false
	}
	for _, p := range nonPublic {
		if p.Contains(ip) {
			return false
		}
	}
	b := ip.As16()
	switch {
	case nat64.Contains(ip):
		return public(netip.AddrFrom4([4]byte(b[12:16])))
	case sixToFour.Contains(ip):
		return public(netip.AddrFrom4([4]byte(b[2:6])))
	case teredo.Contains(ip):
		client := [4]byte{^b[12], ^b[13], ^b[14], ^b[15]}
		return public(netip.AddrFrom4([4]byte(b[4:8]))) && public(netip.AddrFrom4(client))
	}
	return true
}
