package console

import (
	"net/http"
	"strings"
)

// maxRows bounds the rows a list page reads from the API: a page stays
// fast and small however many dead letters pile up.
const maxRows = 500

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	if !c.tokenRequired {
		http.Redirect(w, r, "/console/", http.StatusSeeOther)
		return
	}
	c.render(w, http.StatusOK, "login", view{Title: "Log in", Page: loginView{Next: safeNext(r.URL.Query().Get("next"))}})
}

type loginView struct{ Next, Error string }

// login checks the token through the API (so a wrong one counts against the
// client's failed-attempt budget) and keeps it in the cookie.
func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 8<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "form: "+err.Error(), http.StatusBadRequest)
		return
	}
	next := safeNext(r.PostForm.Get("next"))
	if !c.tokenRequired {
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	token := strings.TrimSpace(r.PostForm.Get("token"))
	s := &session{token: token, r: r}
	status, _, err := c.call(s, http.MethodGet, SessionRoute, nil, nil)
	switch {
	case err != nil:
		c.fail(w, nil, err)
	case token != "" && status == http.StatusNoContent:
		http.SetCookie(w, c.cookie(r, token, 12*3600))
		http.Redirect(w, r, next, http.StatusSeeOther)
	case status == http.StatusTooManyRequests:
		c.render(w, http.StatusTooManyRequests, "login", view{Title: "Log in", Page: loginView{Next: next, Error: "Too many wrong tokens from your address: wait a minute, then try again."}})
	default:
		c.render(w, http.StatusUnauthorized, "login", view{Title: "Log in", Page: loginView{Next: next, Error: "That is not the admin token (ESIMFLOW_ADMIN_TOKEN)."}})
	}
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, c.cookie(r, "", -1))
	http.Redirect(w, r, "/console/login", http.StatusSeeOther)
}

// safeNext keeps a post-login redirect on the console: never another host.
func safeNext(next string) string {
	if !strings.HasPrefix(next, "/console/") || strings.HasPrefix(next, "//") || strings.ContainsAny(next, "\\\r\n") {
		return "/console/"
	}
	return next
}
