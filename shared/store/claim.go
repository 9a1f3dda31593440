package store

import "time"

// ClaimRecord is how both stores keep a claim. Decide applies a Claim call to
// it, so the two implementations cannot disagree on the rules; Redis runs the
// same rules in a Lua script, and the conformance suite holds both to them.
type ClaimRecord struct {
	State      ClaimState `json:"state"`
	Owner      string     `json:"owner,omitempty"` // empty when released or final
	LeaseUntil int64      `json:"leaseUntil"`      // Unix milliseconds
	Attempts   int        `json:"attempts"`
}

// DecideClaim returns the answer to a Claim by owner at now, and the record to
// write when the claim is granted (ok false: write nothing).
func DecideClaim(rec *ClaimRecord, owner string, now time.Time, lease time.Duration) (c Claim, next ClaimRecord, ok bool) {
	until := now.Add(lease)
	switch {
	case rec == nil:
		return Claim{Outcome: Claimed, Attempt: 1, LeaseUntil: until},
			ClaimRecord{State: ClaimHeld, Owner: owner, LeaseUntil: until.UnixMilli(), Attempts: 1}, true
	case rec.State.Final():
		return Claim{Outcome: AlreadyDone, State: rec.State, Attempt: rec.Attempts}, ClaimRecord{}, false
	case rec.Owner != "" && rec.LeaseUntil > now.UnixMilli():
		// A live lease, even our own: a redelivery to the same instance must
		// not send again while the first attempt may still be under way.
		return Claim{Outcome: HeldByOther, Attempt: rec.Attempts, LeaseUntil: time.UnixMilli(rec.LeaseUntil)}, ClaimRecord{}, false
	}
	n := rec.Attempts + 1
	return Claim{Outcome: Claimed, Attempt: n, Takeover: rec.Owner != "", LeaseUntil: until},
		ClaimRecord{State: ClaimHeld, Owner: owner, LeaseUntil: until.UnixMilli(), Attempts: n}, true
}
