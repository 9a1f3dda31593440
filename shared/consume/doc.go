// Package consume is the one message pipeline of esimflow's consumers: it
// pulls from a durable JetStream consumer with a pool of workers, hands each
// message (or batch) to a handler that decides what should become of it, and
// settles the decision — the one place that acks, naks, terminates and writes
// dead letters.
//
// Handlers decide, they never ack. A handler returns an Outcome:
//
//	Ack(label)        the work is done and stored: ack
//	Fail(err)         retry after a delay that grows with the deliveries;
//	                  a dead letter when err is permanent or none are left
//	Wait(why, d)      not yet (another holder, a missing contact): look again
//	                  after d; a dead letter when no delivery is left
//	Hold(err)         the failure is not the message's (its store is down):
//	                  keep it in progress, without spending deliveries, until
//	                  the pipeline's Ready answers, then run the handler again
//	DeadLetter(err)   no retry can help
//
// settle.go holds the whole protocol — ack last, retries, the last delivery,
// dead letters — for single messages and batches; deadletter.go the one
// dead-letter header schema of both streams. See docs/design.md, "Invariants"
// (4: ack last; 6: nothing silently disappears) and "Failure handling".
package consume
