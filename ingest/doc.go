// Package ingest is the webhook receiver: the only part of esimflow on the
// internet, kept thin. For each request it bounds the body, decides the event's
// type and dedupe key, publishes the raw bytes to JetStream and answers
// 200 {"received":true} only after the PubAck (docs/design.md, Invariants 1:
// a 200 means stored). When JetStream does not ack in time it answers 503 with
// Retry-After, so the provider retries; it never answers 200 for an event it
// did not store.
package ingest
