// Package storetest is the conformance suite every store.Store implementation
// must pass; redisstore and kvstore run it against real servers.
//
// The suite states the contract that store.go leaves to prose, for both
// backends alike (there is no Features switch: a difference is a bug):
//
//   - reads of an entity never written give store.ErrNotFound;
//   - an update's fn sees the stored value, or the zero value with its id set;
//     an update returns exactly what a later read gives; an unchanged value or
//     an fn error writes nothing, and the error comes back wrapped;
//   - concurrent updates of one entity all survive (compare-and-set retries);
//   - any string is a valid id, and distinct ids never share an entity;
//   - a seen mark lasts the store's SeenTTL, then goes;
//   - a claim is granted to one caller at a time. A live lease refuses every
//     other Claim, its own owner's too: owner names a process, and two
//     deliveries of one intent inside a process must not both send. Release
//     lets the next Claim in at once; a lease that runs out without Finish or
//     Release is taken over (Takeover set, the send may have happened). Finish
//     by the holder is final and idempotent, and still accepted after the
//     lease ran out if nobody took the claim over; by anyone else it is
//     store.ErrNotOwner;
//   - a contact put replaces the whole contact; reads and deletes of none give
//     store.ErrNotFound; ContactByICCID finds the contact that last listed the
//     iccid, and never one that no longer lists it (replaced, deleted, or
//     overtaken by a concurrent put); ContactByAddress does the same for an
//     email (in any case) or a phone;
//   - the notification log keeps append order and the last
//     store.NotificationLogLimit entries per iccid.
//
// Every case runs in parallel on a store of its own, and waits by polling a
// condition against a deadline, never by sleeping a fixed time.
package storetest
