package locale_test

import (
	"testing"

	"github.com/esimflow/esimflow/shared/locale"
)

func TestValid(t *testing.T) {
	for tag, want := range map[string]bool{
		"en": true, "de-AT": true, "pt_BR": true, "zh-Hant-TW": true, "es-419": true,
		"": false, "e": false, "english!": false, "en-": false, "de AT": false, "toolong-x": false,
	} {
		if got := locale.Valid(tag); got != want {
			t.Errorf("Valid(%q) = %v, want %v", tag, got, want)
		}
	}
	if locale.Canonical("pt_BR") || !locale.Canonical(locale.Normalize("pt_BR")) {
		t.Error("pt_BR is valid but not canonical; its normal form is")
	}
}
