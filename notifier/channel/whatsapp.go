package channel

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/esimflow/esimflow/shared/redact"
)

// WhatsAppOptions configure the WhatsApp channel.
type WhatsAppOptions struct {
	// BaseURL is the API's root with its version, the part before
	// /{phone-number-id}/messages.
	BaseURL string
	// PhoneNumberID is the sender's phone number id in the business account.
	PhoneNumberID string
	// Token is the access token, sent as "Authorization: Bearer <token>".
	Token string
	// TemplatePrefix prefixes the template names: a message rendered from
	// the template kind low_data uses the approved template
	// <prefix>low_data (default "esimflow_").
	TemplatePrefix string
	// Client, when set, makes the calls (tests); nil means a client with Timeout.
	Client  *http.Client
	Timeout time.Duration // default 15s
}

// WhatsAppParams are the named body parameters of each kind's template, in
// the order the approved templates declare them: the message's Vars of the
// same names fill them. A template has to be approved with exactly these
// parameters (WhatsApp refuses a message whose parameters differ).
var WhatsAppParams = map[string][]string{
	"activation":     {"name", "iccid", "activation_code", "install_url"},
	"low_data":       {"name", "iccid", "threshold", "left", "topup_url"},
	"data_exhausted": {"name", "iccid", "topup_url"},
	"validity_low":   {"name", "iccid", "days", "topup_url"},
	"topped_up":      {"name", "iccid", "total"},
	"renewed":        {"name", "iccid", "expires"},
}

// whatsAppEmpty stands in for a variable the message has no value for:
// WhatsApp refuses an empty parameter.
const whatsAppEmpty = "-"

// WhatsApp sends template messages through a WhatsApp Business Cloud
// API–compatible endpoint: a JSON POST to …/{phone-number-id}/messages with
// a bearer token. Outside the customer's 24-hour service window only
// approved templates may be sent, and these messages are the business's
// first word, hence templates always: one per kind, in the message's locale.
type WhatsApp struct {
	endpoint string
	o        WhatsAppOptions
}

// NewWhatsApp checks the options and returns the channel.
func NewWhatsApp(o WhatsAppOptions) (*WhatsApp, error) {
	u, err := url.Parse(o.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("whatsapp: want an http(s) base URL")
	}
	if o.PhoneNumberID == "" || o.Token == "" {
		return nil, errors.New("whatsapp: phone number id and access token are required")
	}
	if o.TemplatePrefix == "" {
		o.TemplatePrefix = "esimflow_"
	}
	if o.Timeout <= 0 {
		o.Timeout = 15 * time.Second
	}
	if o.Client == nil {
		o.Client = &http.Client{Timeout: o.Timeout, CheckRedirect: noRedirects}
	}
	return &WhatsApp{endpoint: strings.TrimRight(o.BaseURL, "/") + "/" + url.PathEscape(o.PhoneNumberID) + "/messages", o: o}, nil
}

// Name is the channel's name in the notification log.
func (w *WhatsApp) Name() string { return WhatsAppName }

// WhatsAppMessage is the request body of a template message.
type WhatsAppMessage struct {
	MessagingProduct string           `json:"messaging_product"` // "whatsapp"
	RecipientType    string           `json:"recipient_type"`    // "individual"
	To               string           `json:"to"`                // digits of the E.164 number
	Type             string           `json:"type"`              // "template"
	Template         WhatsAppTemplate `json:"template"`
	// BizOpaqueCallbackData carries the intent id: the API's status
	// webhooks echo it, so the reseller can match deliveries to intents.
	BizOpaqueCallbackData string `json:"biz_opaque_callback_data,omitempty"`
}

// WhatsAppTemplate names an approved template and fills its parameters.
type WhatsAppTemplate struct {
	Name     string `json:"name"`
	Language struct {
		Code string `json:"code"` // en, de, pt_BR
	} `json:"language"`
	Components []WhatsAppComponent `json:"components,omitempty"`
}

// WhatsAppComponent is one part of a template (here its body).
type WhatsAppComponent struct {
	Type       string              `json:"type"` // "body"
	Parameters []WhatsAppParameter `json:"parameters"`
}

// WhatsAppParameter is one named text parameter.
type WhatsAppParameter struct {
	Type          string `json:"type"` // "text"
	ParameterName string `json:"parameter_name"`
	Text          string `json:"text"`
}

// Send posts one template message to m.To.Phone.
func (w *WhatsApp) Send(ctx context.Context, m Message) error {
	if m.To.Phone == "" {
		return Permanent(errors.New("whatsapp: the contact has no phone number"))
	}
	params, ok := WhatsAppParams[m.Template]
	if !ok {
		return Permanent(fmt.Errorf("whatsapp: no template for %q", m.Template))
	}
	body := WhatsAppMessage{MessagingProduct: "whatsapp", RecipientType: "individual", To: strings.TrimPrefix(m.To.Phone, "+"),
		Type: "template", BizOpaqueCallbackData: m.ID}
	body.Template.Name = w.o.TemplatePrefix + m.Template
	body.Template.Language.Code = WhatsAppLanguage(m.Locale)
	c := WhatsAppComponent{Type: "body"}
	for _, p := range params {
		v := strings.TrimSpace(m.Vars[p])
		if v == "" {
			v = whatsAppEmpty
		}
		c.Parameters = append(c.Parameters, WhatsAppParameter{Type: "text", ParameterName: p, Text: v})
	}
	body.Template.Components = []WhatsAppComponent{c}
	b, err := json.Marshal(body)
	if err != nil {
		return Permanent(fmt.Errorf("whatsapp: %w", err))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.endpoint, bytes.NewReader(b))
	if err != nil {
		return Permanent(fmt.Errorf("whatsapp: %w", redact.Error(err)))
	}
	req.Header.Set("Authorization", "Bearer "+w.o.Token)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := w.o.Client.Do(req)
	if err != nil {
		return fmt.Errorf("whatsapp: %w", redact.Error(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return whatsAppError(resp)
	}
	// The API answers the accepted message's id; an answer without one did
	// not send it.
	var sent struct {
		Messages []struct {
			ID string `json:"id"`
		} `json:"messages"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&sent); err != nil || len(sent.Messages) == 0 || sent.Messages[0].ID == "" {
		return fmt.Errorf("whatsapp: %s without a message id (%v)", resp.Status, err)
	}
	return nil
}

// whatsAppTransient are the API's error codes that a later try can get
// past although the status is a 4xx: rate limits (4, 80007, 130429, 131048,
// 131056), and the API's own trouble (1, 2, 131000, 131016, 133004).
var whatsAppTransient = map[int]bool{1: true, 2: true, 4: true, 80007: true, 130429: true, 131000: true,
	131016: true, 131048: true, 131056: true, 133004: true}

// whatsAppError classifies a non-2xx answer as checkResponse does, except
// that the error codes above are transient whatever the status.
func whatsAppError(resp *http.Response) error {
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	var e struct {
		Error struct {
			Message string `json:"message"`
			Code    int    `json:"code"`
		} `json:"error"`
	}
	_ = json.Unmarshal(raw, &e)
	err := fmt.Errorf("whatsapp: %s: code %d: %s", resp.Status, e.Error.Code, e.Error.Message)
	if e.Error.Code == 0 {
		err = fmt.Errorf("whatsapp: %s: %s", resp.Status, strings.TrimSpace(string(raw[:min(len(raw), 512)])))
	}
	switch s := resp.StatusCode; {
	case whatsAppTransient[e.Error.Code], s == http.StatusRequestTimeout, s == http.StatusTooManyRequests, s >= 500:
		return &SendError{RetryAfter: parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()), Err: err}
	default:
		return Permanent(err)
	}
}

// WhatsAppLanguage spells a locale as WhatsApp's template languages do:
// "pt-br" → "pt_BR", "de" → "de".
func WhatsAppLanguage(locale string) string {
	lang, region, ok := strings.Cut(strings.ReplaceAll(locale, "_", "-"), "-")
	if !ok {
		return strings.ToLower(lang)
	}
	return strings.ToLower(lang) + "_" + strings.ToUpper(region)
}
