package channel_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/esimflow/esimflow/notifier/channel"
	"github.com/esimflow/esimflow/notifier/channel/whatsapptest"
)

func whatsAppMsg(id, phone string) channel.Message {
	return channel.Message{ID: id, Kind: "low_data", Template: "low_data", Locale: "pt-br", To: channel.Recipient{Phone: phone},
		Vars: map[string]string{"name": "Ana", "iccid": "0123", "threshold": "80", "left": "200 MB"}}
}

// TestWhatsAppSend: a template message per kind and locale, with the
// kind's named parameters (a missing one stands as "-").
func TestWhatsAppSend(t *testing.T) {
	srv := whatsapptest.Start(t, nil)
	w, err := channel.NewWhatsApp(srv.Options())
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Send(context.Background(), whatsAppMsg("low_data:s:b:80", "+5511912345678")); err != nil {
		t.Fatal(err)
	}
	got := srv.Sent("low_data:s:b:80")
	if len(got) != 1 {
		t.Fatalf("sent %+v", got)
	}
	m := got[0]
	if m.To != "5511912345678" || m.Template != "esimflow_low_data" || m.Language != "pt_BR" ||
		m.Params["name"] != "Ana" || m.Params["left"] != "200 MB" || m.Params["topup_url"] != "-" {
		t.Errorf("message %+v", m)
	}
}

// TestWhatsAppErrors: the API's rate-limit and outage codes are transient
// even on a 400; a template or recipient the API refuses, or a token it
// does not take, is permanent.
func TestWhatsAppErrors(t *testing.T) {
	tests := []struct {
		name      string
		reply     whatsapptest.Reply
		permanent bool
	}{
		{"pair rate limit on a 400", whatsapptest.Reply{Status: http.StatusBadRequest, Code: 131056}, false},
		{"throughput limit", whatsapptest.Reply{Status: http.StatusBadRequest, Code: 130429}, false},
		{"server error", whatsapptest.Reply{Status: http.StatusInternalServerError, Code: 1}, false},
		{"template does not exist", whatsapptest.Reply{Status: http.StatusNotFound, Code: 132001}, true},
		{"not a WhatsApp user", whatsapptest.Reply{Status: http.StatusBadRequest, Code: 131026}, true},
		{"token expired", whatsapptest.Reply{Status: http.StatusUnauthorized, Code: 190}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := whatsapptest.Start(t, map[string][]whatsapptest.Reply{"4915112345678": {tt.reply}})
			w, _ := channel.NewWhatsApp(srv.Options())
			err := w.Send(context.Background(), whatsAppMsg("x", "+4915112345678"))
			if err == nil || channel.IsPermanent(err) != tt.permanent {
				t.Errorf("err %v, permanent %v; want permanent %v", err, channel.IsPermanent(err), tt.permanent)
			}
		})
	}
	srv := whatsapptest.Start(t, nil)
	w, _ := channel.NewWhatsApp(srv.Options())
	if err := w.Send(context.Background(), whatsAppMsg("x", "")); !channel.IsPermanent(err) {
		t.Errorf("no phone: %v, want permanent", err)
	}
	m := whatsAppMsg("x", "+4915112345678")
	m.Template = "unknown"
	if err := w.Send(context.Background(), m); !channel.IsPermanent(err) {
		t.Errorf("unknown template: %v, want permanent", err)
	}
	if _, err := channel.NewWhatsApp(channel.WhatsAppOptions{BaseURL: "ftp://x", PhoneNumberID: "1", Token: "t"}); err == nil {
		t.Error("ftp base URL accepted")
	}
}

func TestWhatsAppLanguage(t *testing.T) {
	for in, want := range map[string]string{"en": "en", "pt-br": "pt_BR", "de-AT": "de_AT", "es": "es", "zh_hk": "zh_HK"} {
		if got := channel.WhatsAppLanguage(in); got != want {
			t.Errorf("%q → %q, want %q", in, got, want)
		}
	}
}
