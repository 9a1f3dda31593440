package notifier

import (
	"fmt"

	"github.com/esimflow/esimflow/notifier/channel"
	"github.com/esimflow/esimflow/notifier/template"
	"github.com/esimflow/esimflow/shared/intent"
	"github.com/esimflow/esimflow/shared/store"
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

// render turns an intent and its contact (nil for none) into the message the
// channels send.
func render(r Renderer, in intent.Intent, c *store.Contact, defaultLocale string) (channel.Message, error) {
	kind, err := templateKind(in)
	if err != nil {
		return channel.Message{}, err
	}
	d := template.Data{ICCID: in.ICCID, OrderNo: in.OrderNo, Threshold: in.Threshold, UsedBytes: in.UsedVolume,
		TotalBytes: in.TotalVolume, RemainDays: in.RemainDays, UsagePercent: in.UsagePercent, ExpiresAt: in.ExpiresAt}
	m := channel.Message{ID: in.ID, Kind: string(in.Kind), ICCID: in.ICCID, OrderNo: in.OrderNo,
		TransactionID: in.TransactionID, Threshold: in.Threshold}
	locale := defaultLocale
	if c != nil {
		d.Name = c.Name
		m.To = channel.Recipient{Name: c.Name, Email: c.Email, Phone: c.Phone}
		m.TransactionID = orElse(m.TransactionID, c.TransactionID)
		if c.Locale != "" {
			locale = c.Locale
		}
	}
	out, err := r.Render(kind, locale, d)
	if err != nil {
		return channel.Message{}, err
	}
	m.Locale, m.Subject, m.Text, m.HTML, m.SMS = out.Locale, out.Subject, out.Text, out.HTML, out.SMS
	return m, nil
}
