package processor_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/esimflow/esimflow/processor"
	"github.com/esimflow/esimflow/shared/poll"
	"github.com/esimflow/esimflow/shared/store"
	"github.com/esimflow/esimflow/shared/store/kvstore"
)

// racingStore is a store in which another writer changes every order and
// profile a batch writes, between the batch's read and its write: each batch
// write loses its compare-and-set.
type racingStore struct {
	*kvstore.Store
	raced atomic.Int64
}

func (s *racingStore) WriteState(ctx context.Context, snap *store.Snapshot, orderNos, iccids []string) (store.Lost, error) {
	for _, no := range orderNos {
		if _, err := s.UpdateOrder(ctx, no, func(o *store.Order) (bool, error) { o.TransactionID = "tx-other"; return true, nil }); err != nil {
			return store.Lost{}, err
		}
	}
	for _, iccid := range iccids {
		if _, err := s.UpdateProfile(ctx, iccid, func(p *store.Profile) (bool, error) { p.EsimTranNo = "E-other"; return true, nil }); err != nil {
			return store.Lost{}, err
		}
	}
	s.raced.Add(int64(len(orderNos) + len(iccids)))
	return s.Store.WriteState(ctx, snap, orderNos, iccids)
}

var _ interface {
	processor.Store
	store.BatchState
} = (*racingStore)(nil)

// TestBatchLostWriteRedoneAlone: an event whose batch write lost to another
// writer is not acked on the batch's word; it is redone alone, so both
// writers' changes are in the state.
func TestBatchLostWriteRedoneAlone(t *testing.T) {
	r := newRig(t, rigOpts{})
	st := &racingStore{Store: r.kvStore(t)}
	// Stored before the processor starts, so its first fetch takes all
	// three as one batch (started first, on a loaded machine it once wrote
	// no batch at all: see the check below).
	for _, body := range []string{
		`{"eventType":"ORDER_STATUS","orderNo":"B1","status":"GOT_RESOURCE","timestamp":"2024-01-15T12:00:00Z","profiles":[{"iccid":"8910","status":"GOT_RESOURCE"}]}`,
		`{"eventType":"PROFILE_STATUS","iccid":"8910","orderNo":"B1","previousStatus":"GOT_RESOURCE","currentStatus":"ACTIVATED","timestamp":"2024-01-15T13:00:00Z"}`,
		`{"eventType":"DATA_USAGE","iccid":"8910","usedVolume":800,"totalVolume":1000,"usagePercent":80,"timestamp":"2024-01-16T08:00:00Z"}`,
	} {
		r.publish(t, body, true)
	}
	in := r.start(t, st, instOpts{workers: 1, batch: 32})
	poll.Until(t, "all applied", func() bool { return r.quiet(t) })
	if st.raced.Load() == 0 {
		t.Fatal("no batch write happened: the test does not test the batch path")
	}
	var p store.Profile
	if code := in.call(t, "GET", "/v1/profiles/8910", &p); code != 200 {
		t.Fatalf("profile: %d", code)
	}
	if p.Status != "ACTIVATED" || p.UsagePercent != 80 || p.OrderNo != "B1" || p.EsimTranNo != "E-other" {
		t.Errorf("profile = %+v; want the events' changes and the other writer's", p)
	}
	var o store.Order
	if code := in.call(t, "GET", "/v1/orders/B1", &o); code != 200 {
		t.Fatalf("order: %d", code)
	}
	if o.Status != "GOT_RESOURCE" || len(o.Profiles) != 1 || o.TransactionID != "tx-other" {
		t.Errorf("order = %+v; want the event's status and profile and the other writer's transaction id", o)
	}
}
