// Package console is the operator console: server-rendered pages on the
// internal API's listener (/console/) for the support staff of a reseller —
// search an eSIM, read its story, find the customer messages that did not go
// out, fix the contact and re-drive them, look after dead letters and watch
// the services' health.
//
// The console is a client of the internal API, never of the store: every
// page reads and changes state through the JSON routes (registered with
// admin.Server.Handle), called in-process with the operator's own token. So
// the token check, the failed-attempt limit and the routes' validation stay
// in one place, and the console shows what the API would answer. The
// all-in-one serves it beside every route; `esimflow console` serves it in
// front of separately run services (see docs/adr/0007).
//
// Security: the token is kept in an HttpOnly, SameSite=Strict cookie (Secure
// over TLS); without it every page redirects to the login page. With no
// token configured (the loopback-only default) the pages say so and open.
// State-changing requests are POST forms that must carry the session's CSRF
// token and pass Go's cross-origin check (Sec-Fetch-Site / Origin), so a
// page on another site cannot drive them through the operator's browser. No
// JavaScript is served: the Content-Security-Policy forbids every script.
package console
