package provider

import "github.com/esimflow/esimflow/shared/event"

// esimAccess is the default provider's adapter: the documented eventType
// format and eSIM Access's notifyType envelope, as event.Decode reads them
// (ingest turns the form variants of eSIM Access's test tool into that
// JSON first). Its requests are verified by ingest's own settings
// (ESIMFLOW_INGEST_HMAC_*, ESIMFLOW_INGEST_SIGNATURE_*), and its handshake,
// CHECK_HEALTH, is an event type ingest answers without storing.
type esimAccess struct{}

// ESIMAccess returns the default provider's adapter.
func ESIMAccess() Adapter { return esimAccess{} }

func (esimAccess) Name() string    { return Default }
func (esimAccess) Version() string { return "1" }
func (esimAccess) Probes() bool    { return true }

func (esimAccess) Decode(dc event.Decoder, body []byte) []Decoded {
	ev, err := dc.Decode(body)
	return []Decoded{{Event: ev, Err: err}}
}

func (esimAccess) Verifier([]string) (Verifier, error) { return nil, nil }
