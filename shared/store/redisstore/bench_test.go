package redisstore_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/esimflow/esimflow/shared/redistest"
	"github.com/esimflow/esimflow/shared/store"
	"github.com/esimflow/esimflow/shared/store/redisstore"
	"github.com/esimflow/esimflow/shared/testns"
)

// BenchmarkWriteState writes a batch of 32 profiles as the processor does:
// "created" every one read absent (an order's or profile's first event),
// "replaced" every one read as stored (a later event). One op is one
// batch's write alone; its time is mostly the Redis server's.
func BenchmarkWriteState(b *testing.B) {
	const batch = 32
	client := redistest.Client(b)
	for _, created := range []bool{true, false} {
		name := map[bool]string{true: "created", false: "replaced"}[created]
		b.Run(name, func(b *testing.B) {
			ns := testns.New(b)
			s := newStore(b, client, redisstore.Options{Namespace: ns, SeenTTL: time.Hour})
			ctx := context.Background()
			iccids := make([]string, batch)
			for i := range iccids {
				iccids[i] = "8901" + strconv.Itoa(i)
			}
			keys := make([]string, batch)
			for i := range iccids {
				keys[i] = redisstore.Prefix(ns) + "{p:" + iccids[i] + "}"
			}
			n := 0
			snapshot := func() *store.Snapshot {
				n++
				if created {
					if err := client.Del(ctx, keys...).Err(); err != nil {
						b.Fatal(err)
					}
				}
				snap := store.NewSnapshot()
				if err := s.ReadState(ctx, snap, nil, iccids); err != nil {
					b.Fatal(err)
				}
				for _, id := range iccids {
					p := &snap.Profiles[id].Value
					p.Status, p.UsagePercent = "ACTIVATED", float64(n%100)
					p.History = append(p.History[:0], store.Transition{Status: "ACTIVATED", At: time.Unix(int64(n), 0)})
				}
				return snap
			}
			for b.Loop() {
				b.StopTimer()
				snap := snapshot()
				b.StartTimer()
				lost, err := s.WriteState(ctx, snap, nil, iccids)
				if err != nil || !lost.Empty() {
					b.Fatalf("WriteState = %+v, %v", lost, err)
				}
			}
		})
	}
}
