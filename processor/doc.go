// Package processor consumes ESIM_EVENTS through one durable pull consumer
// shared by every instance (start more instances to scale out), merges each
// event into order and profile state, and publishes the notification intents
// it asks for.
//
// Ack last (docs/design.md, Invariants 4): an event is acked only after its
// merge is stored, its intents are acked by JetStream and its dedupe key is
// marked seen. A crash anywhere before the ack redelivers the event, and since
// merges are idempotent and intents deterministic, the redelivery ends in the
// same state.
//
// Failures are sorted by kind. A store that does not answer is an outage, not
// the event's fault: the handler decides to hold the event, and the
// pipeline (shared/consume) keeps it InProgress, no delivery spent, until the
// store answers, and /readyz says 503 meanwhile. Another
// transient failure (a NATS timeout, a lost compare-and-set race) is retried
// with a delay that grows with the delivery count; the consumers have no
// server-side BackOff on purpose (see shared/stream). A permanent one (a body
// that cannot make an event) goes to ESIM_DLQ with the error and is
// terminated, as does an event that fails on its last allowed delivery. An
// event whose instance died holding it on its last delivery is dead-lettered
// by the max-deliveries advisory listener of any instance; both writers use
// the id DeadLetterID(seq), so JetStream keeps one dead letter.
//
// Unknown types and health checks are parked: counted (metric and
// GET /v1/parked), kept in the stream, never merged nor retried. Dead letters
// are listed, shown, re-driven and deleted through the internal API
// (routes.go lists every route).
package processor
