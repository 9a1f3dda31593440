// Package simulate is a provider simulator that knows the truth: it plays
// seeded eSIM lifecycles (shared/lifecycle) against a webhook URL as the
// provider does — signed, from a bounded pool of workers, retried on 5xx
// and timeouts, some sent twice, some reordered, some never sent — serves
// the provider's query API over the same lifecycles, and computes from the
// plan alone the final state and the customer messages esimflow must end
// with, so a run checks itself against esimflow's internal API.
//
// Invariants: the same seed gives the same bodies, the same duplicates and
// the same drops; the expected outcome does not depend on what was dropped,
// duplicated or reordered (a webhook never sent still happened at the
// provider, and its query API says so).
package simulate
