package ingest

import (
	"encoding/json"
	"errors"
	"mime"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"
)

// maxDepth bounds JSON nesting: provider events are two levels deep, and a
// deeply nested body is an attack on the decoder, not an event.
const maxDepth = 32

// errUnsupportedType means a content type ingest does not read (415).
var errUnsupportedType = errors.New("unsupported content type: send application/json (or, where no signature is configured, application/x-www-form-urlencoded)")

// normalize returns the JSON to store for a request: a JSON body as it is,
// or, when form is true, the form the eSIM Access test tool sends (a
// urlencoded body, or the query string of a bodyless POST) turned into the
// same JSON the provider posts.
//
// form is false wherever a signature is configured: a signature covers the
// raw body, so only a body stored byte for byte is what the sender signed (a
// form is rewritten, a query string is not signed at all). text/plain and
// every other type a web page can POST cross-site without a preflight are
// refused; a request without a Content-Type is read as JSON.
func normalize(r *http.Request, body []byte, form bool) ([]byte, error) {
	ct := r.Header.Get("Content-Type")
	media := "application/json"
	if ct != "" && ct != media { // the provider's own, parsed without allocating
		var err error
		if media, _, err = mime.ParseMediaType(ct); err != nil {
			return nil, errUnsupportedType
		}
	}
	switch {
	case media == "application/x-www-form-urlencoded" && form:
		if !utf8.Valid(body) {
			return nil, errors.New("body is not UTF-8")
		}
		values, err := url.ParseQuery(string(body))
		if err != nil {
			return nil, errors.New("body is not a valid form")
		}
		return formJSON(values)
	case media == "application/json" || media == "text/json" || strings.HasSuffix(media, "+json"):
		if len(body) == 0 && r.URL.RawQuery != "" && form {
			return formJSON(r.URL.Query())
		}
		if !utf8.Valid(body) {
			return nil, errors.New("body is not UTF-8")
		}
		if depth(body) > maxDepth {
			return nil, errors.New("JSON nested too deeply")
		}
		return body, nil
	default:
		return nil, errUnsupportedType
	}
}

// formJSON builds the JSON object of a form. Values that are JSON objects or
// arrays (eSIM Access's content=) are embedded as such; numbers stay strings,
// which the decoder accepts. An eSIM Access form that lists the content
// fields flat is wrapped in its "content" envelope.
func formJSON(values url.Values) ([]byte, error) {
	if len(values) == 0 {
		return nil, errors.New("empty form")
	}
	obj := map[string]any{}
	for k, vs := range values {
		v := strings.TrimSpace(vs[len(vs)-1])
		var val any = v
		if (strings.HasPrefix(v, "{") || strings.HasPrefix(v, "[")) && json.Valid([]byte(v)) && depth([]byte(v)) <= maxDepth {
			val = json.RawMessage(v)
		}
		// A bracket key (content[iccid]=…, as PHP and the provider's test
		// tool spell an object's field) is a field of that object.
		if outer, inner, ok := bracketKey(k); ok {
			sub, isMap := obj[outer].(map[string]any)
			if !isMap {
				if _, taken := obj[outer]; taken {
					return nil, errors.New("form: " + outer + " given both whole and by its fields")
				}
				sub = map[string]any{}
				obj[outer] = sub
			}
			sub[inner] = val
			continue
		}
		if _, isMap := obj[k].(map[string]any); isMap {
			return nil, errors.New("form: " + k + " given both whole and by its fields")
		}
		obj[k] = val
	}
	if _, ok := obj["notifyType"]; ok {
		if _, ok := obj["content"]; !ok {
			content := map[string]any{}
			for k, v := range obj {
				if k != "notifyType" && k != "notifyId" && k != "eventGenerateTime" {
					content[k] = v
					delete(obj, k)
				}
			}
			obj["content"] = content
		}
	}
	return json.Marshal(obj)
}

// bracketKey splits "outer[inner]" (one level, as forms nest).
func bracketKey(k string) (outer, inner string, ok bool) {
	i := strings.IndexByte(k, '[')
	if i <= 0 || !strings.HasSuffix(k, "]") {
		return "", "", false
	}
	inner = k[i+1 : len(k)-1]
	if inner == "" || strings.ContainsAny(inner, "[]") {
		return "", "", false
	}
	return k[:i], inner, true
}

// depth returns the deepest nesting of objects and arrays in a JSON text,
// without decoding it.
func depth(b []byte) int {
	deepest, d, inString, escaped := 0, 0, false, false
	for _, c := range b {
		switch {
		case escaped:
			escaped = false
		case inString && c == '\\':
			escaped = true
		case c == '"':
			inString = !inString
		case inString:
		case c == '{' || c == '[':
			d++
			deepest = max(deepest, d)
		case c == '}' || c == ']':
			d--
		}
	}
	return deepest
}
