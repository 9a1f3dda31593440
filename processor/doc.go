// Package processor consumes ESIM_EVENTS through one durable pull consumer
// shared by every instance (start more instances to scale out), merges each
// event into order and profile state, and publishes the notification intents
// it asks for.
//
// Ack last (DESIGN.md invariant 4): an event is acked only after its merge is
// stored, its intents are acked by JetStream and its dedupe key is marked seen.
// A crash anywhere before the ack redelivers the event, and since merges are
// idempotent and intents deterministic, the redelivery ends in the same state.
// Failures are sorted by kind: a transient one (store or NATS unreachable) is
// retried with a delay; a permanent one (a body that cannot make an event) goes
// to ESIM_DLQ with the error and is terminated, as does an event on its last
// allowed delivery.
package processor
