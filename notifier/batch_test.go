package notifier_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/esimflow/esimflow/shared/intent"
	"github.com/esimflow/esimflow/shared/poll"
	"github.com/esimflow/esimflow/shared/store"
)

// TestBatchMixed: a backlog that two instances take in batches — plain
// activations with their contacts, copies of them, warnings superseded by
// one already out, warnings the customer opted out of, warnings about a
// bundle topped up since, and messages
// without a contact under their transactionId — ends as one at a time
// would end it: each plain message sent once and logged once, the others
// suppressed or sent through the single path (docs/adr/0015).
func TestBatchMixed(t *testing.T) {
	t.Parallel()
	for _, redis := range []bool{false, true} {
		t.Run(fmt.Sprintf("redis=%v", redis), func(t *testing.T) {
			t.Parallel()
			var counted *countingStore
			r := start(t, options{n: 2, redis: redis, env: map[string]string{"ESIMFLOW_NOTIFY_BATCH": "8"},
				wrap: func(s store.Store) store.Store { counted = &countingStore{Store: s}; return counted }})
			ctx := context.Background()
			put := func(c store.Contact) {
				t.Helper()
				if err := r.store.PutContact(ctx, c); err != nil {
					t.Fatal(err)
				}
			}
			var plain, suppressed, noContact []intent.Intent
			for i := range 12 {
				tx, iccid := fmt.Sprintf("tx-%d", i), fmt.Sprintf("89010%02d", i)
				put(store.Contact{TransactionID: tx, Email: "a@example.com", Channels: []string{"console"}})
				plain = append(plain, intent.Intent{ID: intent.ActivationID(tx), Kind: intent.Activation, ICCID: iccid, TransactionID: tx})
			}
			// Warnings whose 100 % one is out already.
			for i := range 4 {
				tx, iccid := fmt.Sprintf("tx-full-%d", i), fmt.Sprintf("89020%02d", i)
				put(store.Contact{TransactionID: tx, Email: "a@example.com", Channels: []string{"console"}})
				full := intent.Intent{ID: intent.LowDataID(tx, "b1", 100), Kind: intent.LowData, ICCID: iccid, TransactionID: tx, Threshold: 100}
				r.publish(t, full, full.ID)
				poll.Until(t, "the 100% message", func() bool { return r.out.count(full.ID) == 1 })
				suppressed = append(suppressed, intent.Intent{ID: intent.LowDataID(tx, "b1", 80), Kind: intent.LowData, ICCID: iccid,
					TransactionID: tx, Threshold: 80, SupersededBy: []string{full.ID}})
			}
			// Warnings the customer does not want.
			for i := range 4 {
				tx, iccid := fmt.Sprintf("tx-out-%d", i), fmt.Sprintf("89030%02d", i)
				put(store.Contact{TransactionID: tx, Email: "a@example.com", Channels: []string{"console"}, OptOut: []string{"low_data"}})
				suppressed = append(suppressed, intent.Intent{ID: intent.LowDataID(tx, "b1", 80), Kind: intent.LowData, ICCID: iccid,
					TransactionID: tx, Threshold: 80})
			}
			// Warnings about a bundle topped up since (the profile says so).
			for i := range 4 {
				tx, iccid := fmt.Sprintf("tx-up-%d", i), fmt.Sprintf("89050%02d", i)
				sub := intent.Subscription(iccid, "T1", "")
				put(store.Contact{TransactionID: tx, Email: "a@example.com", Channels: []string{"console"}})
				if _, err := r.store.UpdateProfile(ctx, iccid, func(p *store.Profile) (bool, error) {
					p.Status, p.Bundle = "ACTIVATED", "3G"
					p.Bundles = []store.Bundle{{ID: "3G", Subscription: "T1"}, {ID: "1G", Subscription: "T1"}}
					return true, nil
				}); err != nil {
					t.Fatal(err)
				}
				suppressed = append(suppressed, intent.Intent{ID: intent.LowDataID(sub, "1G", 80), Kind: intent.LowData, ICCID: iccid,
					TransactionID: tx, Subscription: sub, Bundle: "1G", Threshold: 80})
			}
			// No contact under the transactionId: the console needs none.
			for i := range 4 {
				tx, iccid := fmt.Sprintf("tx-none-%d", i), fmt.Sprintf("89040%02d", i)
				noContact = append(noContact, intent.Intent{ID: intent.ActivationID(tx), Kind: intent.Activation, ICCID: iccid, TransactionID: tx})
			}
			// Contacts found elsewhere, as contacts.find finds them: by the
			// ICCID index, and under the transactionId the profile names.
			var elsewhere []intent.Intent
			named := map[string]string{}
			for i := range 3 {
				iccid := fmt.Sprintf("89060%02d", i)
				put(store.Contact{TransactionID: fmt.Sprintf("tx-idx-%d", i), Name: fmt.Sprintf("Ida%d", i), Email: "i@example.com",
					Channels: []string{"console"}, ICCIDs: []string{iccid}})
				in := intent.Intent{ID: intent.ActivationID(iccid), Kind: intent.Activation, ICCID: iccid, TransactionID: fmt.Sprintf("tx-gone-%d", i)}
				elsewhere, named[in.ID] = append(elsewhere, in), fmt.Sprintf("Ida%d", i)
			}
			for i := range 3 {
				tx, iccid := fmt.Sprintf("tx-prof-%d", i), fmt.Sprintf("89070%02d", i)
				put(store.Contact{TransactionID: tx, Name: fmt.Sprintf("Pia%d", i), Email: "p@example.com", Channels: []string{"console"}})
				if _, err := r.store.UpdateProfile(ctx, iccid, func(p *store.Profile) (bool, error) {
					p.OrderNo, p.TransactionID = fmt.Sprintf("O-%d", i), tx
					return true, nil
				}); err != nil {
					t.Fatal(err)
				}
				in := intent.Intent{ID: intent.ActivationID(iccid), Kind: intent.Activation, ICCID: iccid}
				elsewhere, named[in.ID] = append(elsewhere, in), fmt.Sprintf("Pia%d", i)
			}
			// And under the transactionId of the order the intent names
			// (profile and usage events carry no transactionId; the order's
			// event linked it): found by the batch, not one by one.
			for i := range 3 {
				tx, iccid, orderNo := fmt.Sprintf("tx-ord-%d", i), fmt.Sprintf("89080%02d", i), fmt.Sprintf("OL-%d", i)
				put(store.Contact{TransactionID: tx, Name: fmt.Sprintf("Ola%d", i), Email: "o@example.com", Channels: []string{"console"}})
				if _, err := r.store.UpdateOrder(ctx, orderNo, func(o *store.Order) (bool, error) {
					o.TransactionID = tx
					return true, nil
				}); err != nil {
					t.Fatal(err)
				}
				in := intent.Intent{ID: intent.ActivationID(iccid), Kind: intent.Activation, ICCID: iccid, OrderNo: orderNo}
				elsewhere, named[in.ID] = append(elsewhere, in), fmt.Sprintf("Ola%d", i)
			}
			noContact = append(noContact, elsewhere...)
			for copy := range 2 {
				for _, list := range [][]intent.Intent{plain, suppressed, noContact} {
					for _, in := range list {
						r.publish(t, in, fmt.Sprintf("%s/copy-%d", in.ID, copy))
					}
				}
			}
			r.quiet(t)
			for _, in := range append(plain, noContact...) {
				if got := r.out.count(in.ID); got != 1 {
					t.Errorf("%s sent %d times, want 1", in.ID, got)
				}
				for _, id := range []string{in.ID, in.ID + "/console"} {
					if st, err := r.store.ClaimState(ctx, id); err != nil || st != store.ClaimSent {
						t.Errorf("claim %s: %q, %v; want sent", id, st, err)
					}
				}
				if got := r.statuses(t, in.ICCID, in.ID); len(got) != 1 || got[0] != "sent/console" {
					t.Errorf("%s log %v; want one sent/console", in.ID, got)
				}
			}
			for _, in := range suppressed {
				if got := r.out.count(in.ID); got != 0 {
					t.Errorf("%s sent %d times, want 0", in.ID, got)
				}
				if st, err := r.store.ClaimState(ctx, in.ID); err != nil || st != store.ClaimSuppressed {
					t.Errorf("claim %s: %q, %v; want suppressed", in.ID, st, err)
				}
				if got := r.statuses(t, in.ICCID, in.ID); len(got) != 1 || got[0] != "suppressed/" {
					t.Errorf("%s log %v; want one suppressed", in.ID, got)
				}
			}
			if counted.get("ClaimMany") == 0 {
				t.Errorf("no batch claimed: %s", counted)
			}
			if counted.get("ContactManyByICCID") == 0 {
				t.Errorf("no batch looked for contacts by ICCID: %s", counted)
			}
			if n := counted.get("Order"); n != 0 {
				t.Errorf("%d orders read one by one; the batch reads the intents' orders: %s", n, counted)
			}
			for id, name := range named {
				if !r.out.has("id="+id+" ", "Hi "+name+",") {
					t.Errorf("%s not sent to %s", id, name)
				}
			}
		})
	}
}
