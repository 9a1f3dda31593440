// Package redact keeps secrets that travel in URLs — a password or token in
// the userinfo, an API key in the query — out of logs, error messages and
// the dead letters' error header, which the internal API serves.
package redact

import (
	"errors"
	"net/url"
	"strconv"
	"strings"
)

// Mask replaces what is hidden.
const Mask = "xxxxx"

// URL returns u with its userinfo and query replaced by Mask and its fragment
// dropped: scheme, host and path stay, for the reader to know which endpoint
// failed. What does not parse as a URL is cut at the first '?' or '#' and
// loses anything before an '@' in its authority.
func URL(u string) string {
	p, err := url.Parse(u)
	if err != nil || p.Opaque != "" {
		return rough(u)
	}
	if p.User != nil {
		p.User = url.User(Mask)
	}
	if p.RawQuery != "" || p.ForceQuery {
		p.RawQuery, p.ForceQuery = Mask, false
	}
	p.Fragment, p.RawFragment = "", ""
	return p.String()
}

// rough redacts a string that url.Parse refused.
func rough(u string) string {
	s, _, hasQuery := strings.Cut(u, "?")
	s, _, _ = strings.Cut(s, "#")
	if scheme, rest, ok := strings.Cut(s, "://"); ok {
		authority, path, _ := strings.Cut(rest, "/")
		if i := strings.LastIndex(authority, "@"); i >= 0 {
			authority = Mask + authority[i:]
		}
		s = scheme + "://" + authority
		if path != "" || strings.Contains(rest, "/") {
			s += "/" + path
		}
	} else if i := strings.LastIndex(s, "@"); i >= 0 {
		s = Mask + s[i:]
	}
	if hasQuery {
		s += "?" + Mask
	}
	return s
}

// Error redacts the URL of the *url.Error in err's chain — what net/http
// returns, with the full request URL, for a failed request — and returns an
// error that still matches errors.Is and errors.As as err did. Call it where
// the *url.Error is first wrapped: a message fmt.Errorf has formatted already
// is rewritten by text.
func Error(err error) error {
	if err == nil {
		return nil
	}
	if ue, ok := err.(*url.Error); ok {
		return &url.Error{Op: ue.Op, URL: URL(ue.URL), Err: ue.Err}
	}
	var ue *url.Error
	if !errors.As(err, &ue) {
		return err
	}
	msg := strings.ReplaceAll(err.Error(), ue.URL, URL(ue.URL))
	msg = strings.ReplaceAll(msg, strconv.Quote(ue.URL), strconv.Quote(URL(ue.URL)))
	return &redacted{msg: msg, err: err}
}

// redacted is an error whose message no longer holds the URL's secrets.
type redacted struct {
	msg string
	err error
}

func (r *redacted) Error() string { return r.msg }
func (r *redacted) Unwrap() error { return r.err }
