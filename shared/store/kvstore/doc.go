// Package kvstore is the store.Store on NATS KV: the embedded default, so the
// all-in-one binary needs nothing but its own NATS server.
//
// It needs nothing newer than Debian's nats-server 2.9.10: no per-message TTLs
// (2.11), no counters. On 2.12 or newer it turns on atomic batch publishing on
// its buckets' streams and group-commits its writes (below). Two buckets,
// created or updated idempotently by New:
//
//	<ns>_esimflow_state   orders, profiles, contacts, claims, notification log; history 1, no TTL
//	<ns>_esimflow_seen    the seen-set; history 1, bucket max age = SeenTTL
//
// (esimflow_state and esimflow_seen without a namespace; see Buckets). The
// seen-set lives apart because its TTL is the bucket's: a per-key TTL would
// need 2.11, and one max age on the state bucket would expire orders too.
//
// Keys in the state bucket are "order.<id>", "profile.<id>", "claim.<id>",
// "log.<iccid>", "open.<intent id>" (an open intent's latest log entry; a
// read lists them with a watch and drops those beyond
// store.OpenNotificationLimit), "contact.<transactionId>", "contact_iccid.<iccid>" and
// "contact_address.<email or phone>" (the contact indexes, holding a
// transactionId); the seen bucket's keys are the escaped dedupe keys alone. KV
// keys allow only [-/_=.A-Za-z0-9], so ids are escaped: letters, digits, '-'
// and '_' stay as they are (an iccid or order number reads plainly), every
// other byte becomes "=XX" (upper-case hex), the empty id is "=", and an id
// whose escaped form would exceed 512 bytes becomes "==" and the hex SHA-256
// of the id, which keeps subjects far below the server's 4 KiB control line.
// The three forms cannot collide: an escape's '=' is always followed by two
// hex digits.
//
// Every write is a compare-and-set on the key's revision (Create when the key
// is absent, Update at the revision read), retried with jittered back-off when
// another writer won, and store.ErrConflict after 100 lost rounds. Claims use
// the same compare-and-set with store.DecideClaim's rules, so they agree with
// redisstore's Lua scripts; the notification log is one JSON array per iccid,
// appended the same way and trimmed to store.NotificationLogLimit.
//
// Group commit (docs/adr/0017): a single-replica file stream under
// SyncAlways, the embedded default, fsyncs each stored message on its own,
// but an atomic batch (2.12+) once. So the batch methods write a batch's keys
// of one bucket as one atomic batch of those compare-and-sets, and concurrent
// single-key writes to a bucket queue behind the one under way and go
// together in the next (committer). A batch is all or nothing: when it is
// refused (a key another writer changed, the server's limits) each of its
// writes is made alone, as without group commit, so every caller gets its
// own answer and the compare-and-set rules are unchanged. On an older server
// every write is made alone.
//
// Leases are compared with the client's clock (time.Now), as in redisstore:
// the hosts that share a store must keep their clocks in sync.
package kvstore
