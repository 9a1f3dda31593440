// Package notifier consumes notification intents from ESIM_NOTIFY through its
// own durable consumer and sends each customer message exactly once per intent
// id (DESIGN.md invariant 5): it claims the id in the store with a lease, sends,
// then marks it sent; a failed send releases the claim for a retry. The one
// window left — the sender dies after the channel accepted the message but
// before the mark — is retried when the lease expires and logged as
// retried_unknown. A low-data warning superseded by a higher one already sent
// is suppressed, not sent. Every attempt and outcome goes to the notification
// log.
package notifier
