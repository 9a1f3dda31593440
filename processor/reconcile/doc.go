// Package reconcile is the reconciler: it polls a provider's eSIM
// Access–compatible query API for what webhooks did not say, and publishes
// what it learns as events in the provider's own format to ESIM_EVENTS,
// where they take the same dedupe and merge path as webhooks (docs/design.md,
// "Reconciler"; docs/adr/0010).
//
// Contract:
//   - One processor instance at a time sweeps a provider account: a lease
//     in the store (a claim per sweep, as long as the sweep interval), so
//     no entity is polled by two instances at once.
//   - Every query call takes one call from the account's budget in the
//     store (store.Budgets), shared by all instances: the provider's rate
//     limit holds however many run.
//   - A poll publishes only where the provider's view differs from the
//     state: install data at once (an order's GOT_RESOURCE carries none),
//     anything else once the entity has been silent for the stale
//     threshold, then with a per-entity backoff, capped. A poll never moves
//     state backwards: its events carry the provider's time of the view,
//     and the merges decide as for webhooks.
//   - Polled events are marked Esimflow-Source: poll and counted per
//     provider and type (missed webhooks).
package reconcile
