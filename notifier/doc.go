// Package notifier consumes notification intents from ESIM_NOTIFY through its
// own durable consumer and sends each customer message exactly once per
// intent id, on the first channel that takes it (docs/design.md,
// Invariants 5 and "Customer messages").
//
// For each intent it:
//
//  1. claims the intent id in the store with a lease (another instance
//     holding it: look again soon; already sent or suppressed: ack);
//  2. suppresses any message of an eSIM whose status is terminal by now
//     (cancelled, released…: the processor publishes what the events'
//     evidence asks for, in whatever order they come, and a late ACTIVATED
//     after RELEASED must not tell the customer the eSIM works), and a
//     warning superseded by a higher one under way or sent; lets a lower one
//     in flight go first (intent.SupersededBy, intent.After), so a customer
//     never gets 80 % after 100 % — waiting for it parked under it (see
//     below), and not for one that was dead-lettered;
//  3. finds the contact: by the intent's transactionId, by the iccid index
//     of the contacts registry, by the transactionId of the profile's order
//     in the processor's state, then through the optional HTTP resolver;
//  4. routes (see route): the contact's own channel list, else
//     ESIMFLOW_NOTIFY_CHANNELS (email, SMS, WhatsApp, webhook, console), in
//     order, keeping the configured channels it can address. Email, SMS and
//     WhatsApp need a contact: without one the intent is parked under what
//     it waits for, looked for once more, and put back with a retry that
//     grows from half a second and covers ESIMFLOW_CONTACT_WAIT; it is
//     dead-lettered with the reason when the wait is over;
//  5. applies the customer's preferences and the quiet hours (quiet.go): an
//     opted-out non-critical kind is suppressed; a non-critical message in
//     the quiet hours of the contact's time zone is held until they end;
//  6. renders the kind's template in the contact's locale (package
//     template), with the profile's install data for an activation (LPA
//     code, iOS link, inline QR) and the top-up link for the others;
//  7. tries the routed channels in order (fallback.go), each under a claim
//     of its own, "<intent id>/<channel>": claimed before the send,
//     finished as sent after, released on failure. The first channel that
//     takes the message ends the walk; a permanent failure, a timeout or a
//     channel's fifth transient failure moves on to the next; an earlier
//     transient failure retries the same channel later. A lease that ran
//     out mid-send is taken over and logged as retried_unknown;
//  8. finishes the intent's claim as sent once a channel has it, or
//     releases it for a retry: after max(backoff, Retry-After) when a
//     channel failed transiently, at once to the dead letters when every
//     channel failed permanently.
//
// A waiting intent is woken (wake.go): the contact API, the processor's order
// links and the end of a lower warning announce what they stored on
// esim.wake, and one instance re-publishes the intents parked under it as
// copies, which the claims keep to one send; the original keeps its retry.
//
// A dead-lettered intent keeps its channel claims open, and its own claim is
// marked dead_lettered (not final), so a redrive from ESIM_DLQ walks the
// channels again — and so does a later copy of the intent, should the
// processor publish it again.
//
// Intents are taken in batches (batch.go, ESIMFLOW_NOTIFY_BATCH,
// docs/adr/0015): the steps above, with the claims, the reads, the marks and
// the log entries of a batch's plain intents — due, with a contact under
// their transactionId, nothing in the way — made together in a few store
// round trips, and the sends concurrent. What is not plain goes on through
// the one-intent code above, with the claims the batch took.
//
// Every attempt and outcome goes to the notification log, one entry per
// channel try (sent, failed, retried_unknown) and per intent decision
// (waiting, held, suppressed, dead_lettered).
package notifier
