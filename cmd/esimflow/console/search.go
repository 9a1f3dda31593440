package console

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/esimflow/esimflow/shared/store"
)

type searchView struct {
	Q        string
	Message  string
	Order    *store.Order
	Contact  *store.Contact
	Profiles []store.Profile
}

func (c *Console) home(_ http.ResponseWriter, _ *session) (string, view, error) {
	return "search", view{Title: "Search", Nav: "search", Page: searchView{}}, nil
}

// search finds an eSIM by ICCID (straight to its page), an order by its
// number, or a customer's contact by transactionId, email or phone.
func (c *Console) search(w http.ResponseWriter, s *session) (string, view, error) {
	q := strings.TrimSpace(s.r.URL.Query().Get("q"))
	v := searchView{Q: q}
	out := view{Title: "Search", Nav: "search", Page: &v}
	if q == "" {
		return "search", out, nil
	}
	esc := url.PathEscape(q)
	var p store.Profile
	switch err := c.get(s, "/v1/profiles/"+esc+"?history=0", &p); {
	case err == nil:
		http.Redirect(w, s.r, "/console/esims/"+esc, http.StatusSeeOther)
		return "", view{}, nil
	case !isNotFound(err):
		return "", view{}, err
	}
	var o struct {
		store.Order
		ProfileStates []store.Profile `json:"profileStates"`
	}
	switch err := c.get(s, "/v1/orders/"+esc, &o); {
	case err == nil:
		v.Order, v.Profiles = &o.Order, o.ProfileStates
		return "search", out, nil
	case !isNotFound(err):
		return "", view{}, err
	}
	var ct store.Contact
	path := "/v1/contacts/" + esc
	switch {
	case strings.Contains(q, "@"):
		path = "/v1/contacts?email=" + url.QueryEscape(q)
	case strings.HasPrefix(q, "+"):
		path = "/v1/contacts?phone=" + url.QueryEscape(q)
	}
	switch err := c.get(s, path, &ct); {
	case err == nil:
		v.Contact = &ct
		for _, iccid := range ct.ICCIDs {
			var p store.Profile
			if err := c.get(s, "/v1/profiles/"+url.PathEscape(iccid)+"?history=0", &p); err == nil {
				v.Profiles = append(v.Profiles, p)
			}
		}
		return "search", out, nil
	case !isNotFound(err):
		// A 400 says the text is no transaction id, email or phone.
		var ae *apiError
		if !errors.As(err, &ae) || ae.status != http.StatusBadRequest {
			return "", view{}, err
		}
	}
	v.Message = "No eSIM (ICCID), order number, transaction id, email or phone matches “" + q + "”."
	return "search", out, nil
}
