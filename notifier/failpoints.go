//go:build failpoints

package notifier

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/esimflow/esimflow/notifier/channel"
	"github.com/esimflow/esimflow/shared/failpoint"
	"github.com/esimflow/esimflow/shared/store"
)

// The chaos suite's crash points and planted bugs (see shared/failpoint and
// chaos/bugs_test.go), as decorators New installs around the store and the
// channels; only builds with the failpoints tag have them. Crash points:
//
//	after-send  a channel accepted a message, before it is marked sent
//	after-mark  bug-mark-first marked a message sent, before sending it
//
// Planted bugs, each breaking invariant 5 (docs/design.md, "Invariants"):
//
//	bug-skip-claim  a channel's claim always reads as ours
//	bug-mark-first  a message is marked sent before it is sent

// plantedStore answers every channel claim with "claimed" (bug-skip-claim).
type plantedStore struct{ Store }

func failpointStore(s Store) Store { return plantedStore{s} }

func (s plantedStore) Claim(ctx context.Context, id, owner string, lease time.Duration) (store.Claim, error) {
	c, err := s.Store.Claim(ctx, id, owner, lease)
	if failpoint.Enabled("bug-skip-claim") && isChannelClaim(id) {
		return store.Claim{Outcome: store.Claimed, Attempt: 1}, nil
	}
	return c, err
}

func (s plantedStore) ClaimMany(ctx context.Context, ids []string, owner string, lease time.Duration) ([]store.Claim, error) {
	cs, err := s.Store.ClaimMany(ctx, ids, owner, lease)
	if err == nil && failpoint.Enabled("bug-skip-claim") {
		for i, id := range ids {
			if isChannelClaim(id) {
				cs[i] = store.Claim{Outcome: store.Claimed, Attempt: 1}
			}
		}
	}
	return cs, err
}

// isChannelClaim reports whether id is a channel's claim,
// "<intent id>/<channel>", rather than an intent's.
func isChannelClaim(id string) bool {
	i := strings.LastIndexByte(id, '/')
	return i >= 0 && channel.Known(id[i+1:])
}

// plantedChannel crashes after a send, and marks the message sent before
// sending it (bug-mark-first).
type plantedChannel struct {
	Channel
	store Store
	owner string
}

func failpointChannel(ch Channel, st Store, owner string) Channel {
	return plantedChannel{Channel: ch, store: st, owner: owner}
}

func (c plantedChannel) Send(ctx context.Context, m channel.Message) error {
	if failpoint.Enabled("bug-mark-first") {
		id := m.ID + "/" + c.Name()
		if err := c.store.Finish(ctx, id, c.owner, store.ClaimSent); err != nil {
			return fmt.Errorf("mark %s sent: %w", id, err)
		}
		failpoint.Inject("after-mark")
	}
	err := c.Channel.Send(ctx, m)
	if err == nil {
		failpoint.Inject("after-send")
	}
	return err
}
