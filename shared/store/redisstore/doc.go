// Package redisstore is the store.Store on Redis, for production. It takes a
// go-redis v9 UniversalClient, so a single node, Sentinel or Cluster.
//
// Every key is the prefix "esimflow:" (with a namespace, "esimflow:<ns>:")
// followed by a kind and the id inside one hash tag:
//
//	esimflow:<ns>:{o:<orderNo>}     order, JSON string
//	esimflow:<ns>:{p:<iccid>}       profile, JSON string
//	esimflow:<ns>:{c:<intent id>}   claim, hash {state, owner, lease_until_ms, attempts}
//	esimflow:<ns>:{l:<iccid>}       notification log, list of JSON entries
//	esimflow:<ns>:{n:open}          open intents: hash intent id → latest JSON entry
//	esimflow:<ns>:{n:open}:t        open intents: sorted set of intent ids by SentAt (ms)
//	esimflow:<ns>:{s:<dedupe key>}  seen mark, "1" with the seen TTL
//	esimflow:<ns>:{k:<transactionId>} contact, JSON string
//	esimflow:<ns>:{ki:<iccid>}      contact index: the transactionId listing the iccid
//	esimflow:<ns>:{ka:<address>}    contact index: the transactionId with the email (lower case) or phone
//	esimflow:<ns>:{r:<budget>}:<w>  calls taken from a budget in window w, expiring two windows later
//
// Ids go in as they are (Redis keys are binary-safe). Every operation but a
// contact's put and delete touches one key, hence one slot; those write the
// contact and its index entries as separate commands, in an order that
// store.Contacts makes safe; the tags are there so that a later operation over
// several keys of one entity could keep to a slot too. An id containing '}'
// only shortens its hash tag.
//
// Orders and profiles are updated with WATCH, GET, MULTI SET, EXEC, retried
// with jittered back-off when another writer changed the key, and
// store.ErrConflict after 100 lost rounds. Claims are changed by Lua scripts
// that apply store.DecideClaim's rules, check before they write (a script that
// go-redis re-runs after a timeout does no harm) and run through Script.Run,
// which falls back to EVAL when the server lost its script cache (restart,
// failover). Leases are compared with the client's clock, passed to the
// scripts, as in kvstore: hosts sharing a store must keep their clocks in sync.
// The notification log is RPUSH and LTRIM to store.NotificationLogLimit in one
// MULTI; the open intents are then set or removed, and bounded to
// store.OpenNotificationLimit, by one Lua script over their two keys.
//
// Claims and state have no TTL; seen marks do. The server must run with
// maxmemory-policy noeviction: an evicted claim would let a message go out
// twice, an evicted seen mark would let a late retry be processed again.
package redisstore
