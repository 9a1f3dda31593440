// Package event decodes provider webhooks into one canonical Event.
//
// Two wire formats are accepted: the documented one, {"eventType": ...} with the
// fields at the top level, and the eSIM Access envelope {"notifyType": ...,
// "content": {...}}. Numbers may arrive as JSON numbers or numeric strings. Fields
// the decoder does not know are kept in Event.Extra, never rejected.
//
// Decoding is lenient by contract: Decode fails hard (ErrInvalidJSON) only on a
// body that is not JSON. Malformed or missing fields come back as an error
// wrapping ErrMalformed beside an Event that still names its type, so ingest
// stores whatever JSON the provider sent and the processor dead-letters the
// malformed event as permanent; JSON that names no known type is Unknown.
package event
