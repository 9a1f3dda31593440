package redact_test

import (
	"errors"
	"fmt"
	"net/url"
	"strings"
	"syscall"
	"testing"

	"github.com/esimflow/esimflow/shared/redact"
)

func TestURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://shop.example/c/1?key=SECRET":           "https://shop.example/c/1?xxxxx",
		"https://user:SECRET@shop.example/c":            "https://xxxxx@shop.example/c",
		"nats://SECRET@nats:4222":                       "nats://xxxxx@nats:4222",
		"https://shop.example/c#SECRET":                 "https://shop.example/c",
		"https://shop.example/c":                        "https://shop.example/c",
		"https://user:SECRET@shop.example/%zz?k=SECRET": "https://xxxxx@shop.example/%zz?xxxxx",
		"not a url?token=SECRET":                        "not%20a%20url?xxxxx",
	} {
		if got := redact.URL(in); got != want {
			t.Errorf("URL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestError(t *testing.T) {
	inner := &url.Error{Op: "Get", URL: "https://u:SECRET@shop.example/c?key=SECRET", Err: syscall.ECONNREFUSED}
	for name, err := range map[string]error{
		"top":     inner,
		"wrapped": fmt.Errorf("contact resolver: %w", &url.Error{Op: "Get", URL: inner.URL, Err: syscall.ECONNREFUSED}),
	} {
		got := redact.Error(err)
		if strings.Contains(got.Error(), "SECRET") {
			t.Errorf("%s: %v still holds the secret", name, got)
		}
		if !errors.Is(got, syscall.ECONNREFUSED) {
			t.Errorf("%s: %v lost its cause", name, got)
		}
	}
	if redact.Error(nil) != nil {
		t.Error("Error(nil) != nil")
	}
}
