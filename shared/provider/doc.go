// Package provider turns what an eSIM provider posts into canonical events
// (shared/event), one adapter per provider: each names itself and its
// version, verifies a request its provider's way, reads a body into zero or
// more events, and may answer a handshake (an SNS subscription, a probe).
//
// Most providers are described by a mapping file (YAML, see Mapping): how
// to recognise each kind of event, the JSON path of each canonical field,
// its unit and time format, the status vocabulary, and the signature
// scheme. The built-in Airalo, eSIM Go, Roamify and 1GLOBAL adapters are
// such files, embedded; a reseller adds a provider with a file of its own
// in ESIMFLOW_PROVIDERS_DIR. What a file cannot say is code: the default
// provider (the documented eventType format and eSIM Access's notifyType
// envelope, incl. its form variants, read by event.Decode) and Telna's AWS
// SNS envelope, with its RSA signature and subscription handshake.
//
// Invariants: decoding is a pure function of the body (the processor and
// replay decode the stored body again, by the adapter named in the
// message's headers, and get the events ingest got); every event an
// adapter returns has passed event.Decoder.Check, or the error says which
// field failed; a verifier's error never carries a secret.
package provider
