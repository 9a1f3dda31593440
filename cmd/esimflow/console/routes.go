package console

import "net/http"

// Mux is where the console registers: the internal API server
// (admin.Server). Handle routes need the bearer token; HandlePage routes
// authenticate themselves (here: the cookie).
type Mux interface {
	Handle(pattern string, h http.Handler)
	HandlePage(pattern string, h http.Handler)
}

// Register adds the console's pages to m, and the one API route the login
// checks a token against.
func (c *Console) Register(m Mux) {
	// The login checks a token through this route, so a wrong token counts
	// against the client's failed-attempt budget like any API call.
	m.Handle("GET "+SessionRoute, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))

	// Login, open to everyone.
	m.HandlePage("GET /console/login", http.HandlerFunc(c.loginPage))
	m.HandlePage("POST /console/login", c.crossOrigin(http.HandlerFunc(c.login)))
	m.HandlePage("POST /console/logout", c.crossOrigin(http.HandlerFunc(c.logout)))

	// Pages: read only.
	m.HandlePage("GET /console", http.RedirectHandler("/console/", http.StatusMovedPermanently))
	m.HandlePage("GET /console/{$}", c.page(c.home))
	m.HandlePage("GET /console/search", c.page(c.search))
	m.HandlePage("GET /console/esims/{iccid}", c.page(c.esim))
	m.HandlePage("GET /console/events/{seq}", c.page(c.event))
	m.HandlePage("GET /console/undelivered", c.page(c.undelivered))
	m.HandlePage("GET /console/contacts/{transactionId}", c.page(c.contactForm))
	m.HandlePage("GET /console/dlq", c.page(c.deadLetters))
	m.HandlePage("GET /console/dlq/{seq}", c.page(c.deadLetter))
	m.HandlePage("GET /console/dlq/{seq}/delete", c.page(c.confirmDelete))
	m.HandlePage("GET /console/purge", c.page(c.confirmPurge))
	m.HandlePage("GET /console/health", c.page(c.health))

	// Actions: POST forms with the CSRF token.
	m.HandlePage("POST /console/redrive", c.action(c.redrive))
	m.HandlePage("POST /console/contacts/{transactionId}", c.action(c.saveContact))
	m.HandlePage("POST /console/dlq/{seq}/delete", c.action(c.deleteDeadLetter))
	m.HandlePage("POST /console/purge", c.action(c.purge))
}
