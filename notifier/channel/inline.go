package channel

import (
	"bytes"
	"fmt"

	gomail "github.com/wneessen/go-mail"
)

// embedInline adds m's inline images to an email, each under the
// Content-ID its HTML names (cid:<ContentID>); a text-only email gets none.
func embedInline(msg *gomail.Msg, m Message) error {
	if m.HTML == "" {
		return nil
	}
	for _, img := range m.Inline {
		err := msg.EmbedReader(img.ContentID, bytes.NewReader(img.Data), gomail.WithFileContentID("<"+img.ContentID+">"),
			gomail.WithFileContentType(gomail.ContentType(img.ContentType)))
		if err != nil {
			return Permanent(fmt.Errorf("email: inline %s: %w", img.ContentID, err))
		}
	}
	return nil
}
