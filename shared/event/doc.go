// Package event decodes provider webhooks into one canonical Event.
//
// Two wire formats are accepted: the documented one, {"eventType": ...} with the
// fields at the top level, and the eSIM Access envelope {"notifyType": ...,
// "content": {...}}. Numbers may arrive as JSON numbers or numeric strings. Fields
// the decoder does not know are kept in Event.Extra, never rejected.
//
// Decoding is lenient by contract: Peek only needs a JSON value to name a type, so
// ingest can store whatever the provider sent; Decode reports malformed fields as
// an error wrapping ErrMalformed, which the processor treats as permanent.
package event
