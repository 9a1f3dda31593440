package store

import "github.com/segmentio/encoding/json"

// EncodeState and DecodeState are how the stores keep orders and profiles:
// JSON, encoded and decoded by segmentio/encoding, which did a profile's
// encode and decode in about a third of encoding/json's CPU and as fast as
// a binary format would (docs/adr/0016). The bytes are JSON, so states
// stored before read as they were, and anything that reads them with
// encoding/json still can. One difference: it writes an omitzero field's
// zero value (a zero time as "0001-01-01T00:00:00Z"), which reads back as
// the same zero.
func EncodeState(v any) ([]byte, error) { return json.Marshal(v) }

// DecodeState reads what EncodeState, or encoding/json, wrote.
func DecodeState(b []byte, v any) error { return json.Unmarshal(b, v) }
