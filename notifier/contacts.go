package notifier

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/esimflow/esimflow/notifier/channel"
	"github.com/esimflow/esimflow/notifier/template"
	"github.com/esimflow/esimflow/shared/intent"
	"github.com/esimflow/esimflow/shared/locale"
	"github.com/esimflow/esimflow/shared/store"
)

// maxContactBody bounds a contact's JSON, in the API and from the resolver.
const maxContactBody = 64 << 10

// contactBody is a contact as the API takes it (and the resolver returns it).
type contactBody struct {
	TransactionID string   `json:"transactionId"` // optional; must match the path
	Name          string   `json:"name"`
	Email         string   `json:"email"`
	Phone         string   `json:"phone"`
	Locale        string   `json:"locale"`
	TimeZone      string   `json:"timeZone"`
	Channels      []string `json:"channels"`
	OptOut        []string `json:"optOut"`
	ICCIDs        []string `json:"iccids"`
}

var (
	e164RE  = regexp.MustCompile(`^\+[1-9][0-9]{6,14}$`)
	iccidRE = regexp.MustCompile(`^[0-9]{6,22}[Ff]?$`)
)

// contact validates the body and returns the contact for transactionID. The
// errors are written for the API caller.
func (b contactBody) contact(transactionID string) (store.Contact, error) {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if transactionID == "" || len(transactionID) > 128 || strings.ContainsFunc(transactionID, unicode.IsControl) {
		bad("transactionId: want 1 to 128 printable characters")
	}
	if b.TransactionID != "" && b.TransactionID != transactionID {
		bad("transactionId %q in the body differs from %q in the path", b.TransactionID, transactionID)
	}
	if len(b.Name) > 200 || strings.ContainsFunc(b.Name, unicode.IsControl) {
		bad("name: want at most 200 printable characters")
	}
	if b.Email != "" {
		if a, err := mail.ParseAddress(b.Email); err != nil || a.Address != b.Email || a.Name != "" {
			bad("email %q: want a bare address such as ana@example.com", b.Email)
		}
	}
	if b.Phone != "" && !e164RE.MatchString(b.Phone) {
		bad("phone %q: want E.164, such as +4915112345678", b.Phone)
	}
	if b.Locale != "" && !locale.Valid(b.Locale) {
		bad("locale %q: want a language tag such as en, de or pt-BR", b.Locale)
	}
	if b.TimeZone != "" {
		if _, err := time.LoadLocation(b.TimeZone); err != nil || b.TimeZone == "Local" {
			bad("timeZone %q: want an IANA time zone such as Asia/Tokyo", b.TimeZone)
		}
	}
	for i, k := range b.OptOut {
		switch {
		case !slices.Contains(template.Kinds, template.Kind(k)):
			bad("optOut: %q is not one of %v", k, template.Kinds)
		case slices.Contains(b.OptOut[:i], k):
			bad("optOut: %q twice", k)
		}
	}
	for i, ch := range b.Channels {
		switch {
		case !channel.Known(ch):
			bad("channels: %q is not one of %v", ch, channel.Names)
		case slices.Contains(b.Channels[:i], ch):
			bad("channels: %q twice", ch)
		case ch == channel.EmailName && b.Email == "":
			bad("channels: email needs an email address")
		case (ch == channel.SMSName || ch == channel.WhatsAppName) && b.Phone == "":
			bad("channels: %s needs a phone number", ch)
		}
	}
	needsAddress := len(b.Channels) == 0 || slices.ContainsFunc(b.Channels, func(c string) bool {
		return c == channel.EmailName || c == channel.SMSName || c == channel.WhatsAppName
	})
	if needsAddress && b.Email == "" && b.Phone == "" {
		bad("a contact needs an email or a phone (or channels naming only webhook or console)")
	}
	for i, iccid := range b.ICCIDs {
		if !iccidRE.MatchString(iccid) {
			bad("iccids: %q is not an iccid (6 to 22 digits)", iccid)
		} else if slices.Contains(b.ICCIDs[:i], iccid) {
			bad("iccids: %q twice", iccid)
		}
	}
	if len(b.ICCIDs) > 100 {
		bad("iccids: at most 100")
	}
	if err := errors.Join(errs...); err != nil {
		return store.Contact{}, err
	}
	return store.Contact{TransactionID: transactionID, Name: b.Name, Email: b.Email, Phone: b.Phone,
		Locale: b.Locale, TimeZone: b.TimeZone, Channels: b.Channels, OptOut: b.OptOut, ICCIDs: b.ICCIDs}, nil
}

// ContactStore is what finding contacts reads.
type ContactStore interface {
	Contact(ctx context.Context, transactionID string) (store.Contact, error)
	ContactByICCID(ctx context.Context, iccid string) (store.Contact, error)
	Profile(ctx context.Context, iccid string) (store.Profile, error)
	Order(ctx context.Context, orderNo string) (store.Order, error)
}

// ContactResolver finds contacts outside the store; store.ErrNotFound for none.
type ContactResolver interface {
	Resolve(ctx context.Context, k ContactKeys) (store.Contact, error)
}

// contacts finds the customer of an intent.
type contacts struct {
	store    ContactStore
	resolver ContactResolver // nil: none
}

// find returns the intent's contact, nil when there is none (yet). It tries,
// in order: the intent's transactionId; the iccid index; the transactionId
// of the profile's order, which the processor's state knows once the order
// event arrived; then the resolver.
func (f contacts) find(ctx context.Context, in intent.Intent) (*store.Contact, error) {
	k := ContactKeys{OrderNo: in.OrderNo, TransactionID: in.TransactionID, ICCID: in.ICCID}
	byTx := func(tx string) (*store.Contact, error) {
		c, err := f.store.Contact(ctx, tx)
		if errors.Is(err, store.ErrNotFound) {
			return nil, nil
		}
		return &c, err
	}
	if k.TransactionID != "" {
		if c, err := byTx(k.TransactionID); c != nil || err != nil {
			return c, err
		}
	}
	c, err := f.store.ContactByICCID(ctx, in.ICCID)
	switch {
	case err == nil:
		return &c, nil
	case !errors.Is(err, store.ErrNotFound):
		return nil, err
	}
	if k.TransactionID == "" || k.OrderNo == "" {
		if err := f.fromState(ctx, &k); err != nil {
			return nil, err
		}
		if k.TransactionID != "" && k.TransactionID != in.TransactionID {
			if c, err := byTx(k.TransactionID); c != nil || err != nil {
				return c, err
			}
		}
	}
	if f.resolver == nil {
		return nil, nil
	}
	c, err = f.resolver.Resolve(ctx, k)
	switch {
	case err == nil:
		return &c, nil
	case errors.Is(err, store.ErrNotFound):
		return nil, nil
	default:
		return nil, err
	}
}

// fromState fills the order number and transactionId the intent lacks from
// the profile and its order.
func (f contacts) fromState(ctx context.Context, k *ContactKeys) error {
	p, err := f.store.Profile(ctx, k.ICCID)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return err
	}
	k.OrderNo, k.TransactionID = orElse(k.OrderNo, p.OrderNo), orElse(k.TransactionID, p.TransactionID)
	if k.TransactionID == "" && k.OrderNo != "" {
		o, err := f.store.Order(ctx, k.OrderNo)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		k.TransactionID = o.TransactionID
	}
	return nil
}

// orElse returns a if set, else b.
func orElse(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
