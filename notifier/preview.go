package notifier

import (
	"context"
	"errors"
	"fmt"

	"github.com/esimflow/esimflow/shared/intent"
	"github.com/esimflow/esimflow/shared/store"
)

// Preview is a logged message rendered now, as the notifier would send it:
// with the current contact, templates and routing, and the numbers of the
// profile's current state (the message sent carried those of its event).
type Preview struct {
	ID        string   `json:"id"`
	Kind      string   `json:"kind"`
	ICCID     string   `json:"iccid"`
	Threshold int      `json:"threshold,omitempty"`
	Locale    string   `json:"locale"`
	Channels  []string `json:"channels"` // where it would go now; none without a contact
	To        struct {
		Name  string `json:"name,omitempty"`
		Email string `json:"email,omitempty"`
		Phone string `json:"phone,omitempty"`
	} `json:"to"`
	TransactionID string `json:"transactionId,omitempty"` // the contact's; "" without one
	Subject       string `json:"subject"`
	Text          string `json:"text"`
	HTML          string `json:"html,omitempty"`
	SMS           string `json:"sms,omitempty"`
}

// preview renders the message of intent id, known from iccid's notification
// log; store.ErrNotFound when the log has no such intent.
func (h *Handler) preview(ctx context.Context, iccid, id string) (Preview, error) {
	log, err := h.store.Notifications(ctx, iccid)
	if err != nil {
		return Preview{}, fmt.Errorf("notifications %s: %w", iccid, err)
	}
	var in intent.Intent
	for _, n := range log {
		if n.ID == id {
			in = intent.Intent{ID: n.ID, Kind: intent.Kind(n.Kind), ICCID: n.ICCID, Threshold: n.Threshold, TransactionID: n.TransactionID}
		}
	}
	if in.ID == "" {
		return Preview{}, fmt.Errorf("intent %s of iccid %s: %w", id, iccid, store.ErrNotFound)
	}
	p, err := h.store.Profile(ctx, iccid)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return Preview{}, fmt.Errorf("profile %s: %w", iccid, err)
	}
	in.OrderNo, in.TransactionID = p.OrderNo, orElse(in.TransactionID, p.TransactionID)
	in.UsagePercent, in.UsedVolume, in.TotalVolume = p.UsagePercent, p.UsedVolume, p.TotalVolume
	if p.Validity != nil {
		in.RemainDays = p.Validity.Remain
	}
	contact, err := h.contacts.find(ctx, in)
	if err != nil {
		return Preview{}, fmt.Errorf("find contact: %w", err)
	}
	out := Preview{ID: in.ID, Kind: string(in.Kind), ICCID: in.ICCID, Threshold: in.Threshold, Channels: []string{}}
	if targets, err := route(contact, h.channels, h.order); err == nil {
		for _, ch := range targets {
			out.Channels = append(out.Channels, ch.Name())
		}
	} else if !errors.Is(err, errNoContact) {
		return Preview{}, err
	}
	m, err := render(h.templates, in, contact, h.locale, extras{install: p.Install, topUpURL: h.topUpURL})
	if err != nil {
		return Preview{}, fmt.Errorf("render %s: %w", in.ID, err)
	}
	if contact != nil {
		out.TransactionID = contact.TransactionID
	}
	out.To.Name, out.To.Email, out.To.Phone = m.To.Name, m.To.Email, m.To.Phone
	out.Locale, out.Subject, out.Text, out.HTML, out.SMS = m.Locale, m.Subject, m.Text, m.HTML, m.SMS
	return out, nil
}
