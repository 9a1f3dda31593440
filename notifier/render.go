package notifier

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/esimflow/esimflow/notifier/channel"
	"github.com/esimflow/esimflow/notifier/template"
	"github.com/esimflow/esimflow/shared/intent"
	"github.com/esimflow/esimflow/shared/store"
	qrcode "github.com/skip2/go-qrcode"
)

// Renderer renders one message from a template.
type Renderer interface {
	Render(kind template.Kind, locale string, d template.Data) (template.Rendered, error)
}

// templateKind is the template an intent uses: a low-data warning at 100 % is
// "data exhausted".
func templateKind(in intent.Intent) (template.Kind, error) {
	switch in.Kind {
	case intent.Activation:
		return template.Activation, nil
	case intent.LowData:
		if in.Threshold >= 100 {
			return template.DataExhausted, nil
		}
		return template.LowData, nil
	case intent.ValidityLow:
		return template.ValidityLow, nil
	case intent.ToppedUp:
		return template.ToppedUp, nil
	case intent.Renewed:
		return template.Renewed, nil
	}
	return "", fmt.Errorf("intent kind %q has no template", in.Kind)
}

// extras are what a message carries besides the intent and the contact:
// the profile's install data (activation) and the reseller's top-up link
// template (ESIMFLOW_TOPUP_URL).
type extras struct {
	install  *store.Install // nil: none known
	topUpURL string
}

// render turns an intent and its contact (nil for none) into the message the
// channels send.
func render(r Renderer, in intent.Intent, c *store.Contact, defaultLocale string, x extras) (channel.Message, error) {
	kind, err := templateKind(in)
	if err != nil {
		return channel.Message{}, err
	}
	d := template.Data{ICCID: in.ICCID, OrderNo: in.OrderNo, Threshold: in.Threshold, UsedBytes: in.UsedVolume,
		TotalBytes: in.TotalVolume, RemainDays: in.RemainDays, UsagePercent: in.UsagePercent, ExpiresAt: in.ExpiresAt}
	m := channel.Message{ID: in.ID, Kind: string(in.Kind), ICCID: in.ICCID, OrderNo: in.OrderNo,
		TransactionID: in.TransactionID, Threshold: in.Threshold, Template: string(kind)}
	locale := defaultLocale
	if c != nil {
		d.Name = c.Name
		m.To = channel.Recipient{Name: c.Name, Email: c.Email, Phone: c.Phone}
		m.TransactionID = orElse(m.TransactionID, c.TransactionID)
		if c.Locale != "" {
			locale = c.Locale
		}
	}
	if kind == template.Activation && x.install != nil {
		d.ActivationCode, d.QRCodeURL, d.InstallURL = x.install.ActivationCode, x.install.QRCodeURL, x.install.InstallURL
		if d.ActivationCode != "" {
			png, err := qrcode.Encode(d.ActivationCode, qrcode.Medium, 256)
			if err != nil {
				return channel.Message{}, fmt.Errorf("QR code of %s: %w", in.ID, err)
			}
			d.QRInline = true
			m.Inline = []channel.Inline{{ContentID: template.QRContentID, ContentType: "image/png", Data: png}}
		}
	}
	if kind != template.Activation {
		d.TopUpURL = topUpLink(x.topUpURL, in.ICCID, in.OrderNo, m.TransactionID)
	}
	out, err := r.Render(kind, locale, d)
	if err != nil {
		return channel.Message{}, err
	}
	m.Locale, m.Subject, m.Text, m.HTML, m.SMS, m.Vars = out.Locale, out.Subject, out.Text, out.HTML, out.SMS, out.Vars
	return m, nil
}

// topUpLink fills the reseller's top-up link template for one eSIM; empty
// when there is none, or it needs a key the message lacks.
func topUpLink(tmpl, iccid, orderNo, transactionID string) string {
	if tmpl == "" {
		return ""
	}
	link := tmpl
	for _, ph := range []struct{ key, v string }{{"{iccid}", iccid}, {"{orderNo}", orderNo}, {"{transactionId}", transactionID}} {
		if !strings.Contains(link, ph.key) {
			continue
		}
		if ph.v == "" {
			return ""
		}
		link = strings.ReplaceAll(link, ph.key, url.QueryEscape(ph.v))
	}
	return link
}

// extras reads what the message of in carries besides its own fields: for
// an activation, the profile's install data.
func (h *Handler) extras(ctx context.Context, in intent.Intent) (extras, error) {
	x := extras{topUpURL: h.topUpURL}
	if in.Kind != intent.Activation {
		return x, nil
	}
	p, err := h.store.Profile(ctx, in.ICCID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return x, fmt.Errorf("profile %s: %w", in.ICCID, err)
	}
	x.install = p.Install
	return x, nil
}
