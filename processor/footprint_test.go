package processor_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/esimflow/esimflow/shared/clustertest"
	"github.com/esimflow/esimflow/shared/poll"
	"github.com/esimflow/esimflow/shared/store"
	"github.com/esimflow/esimflow/shared/store/redisstore"
	"github.com/esimflow/esimflow/shared/stream"
	"github.com/redis/go-redis/v9"
)

// TestFootprint measures what docs/capacity.md sizes with: the bytes
// ESIM_EVENTS keeps per event (its accounting, and its files on disk), and
// the Redis memory (MEMORY USAGE on a Redis Cluster) of each kind of key the
// processor and the notifier keep per eSIM. It runs with
// ESIMFLOW_TEST_FOOTPRINT=1 and logs the figures (go test -v).
func TestFootprint(t *testing.T) {
	if os.Getenv("ESIMFLOW_TEST_FOOTPRINT") == "" {
		t.Skip("ESIMFLOW_TEST_FOOTPRINT unset: the measurements of docs/capacity.md")
	}
	rc := clustertest.RedisCluster(t)
	r := newRig(t, rigOpts{})
	client := rc.Client()
	t.Cleanup(func() { _ = client.Close() })
	st, err := redisstore.New(client, redisstore.Options{Namespace: r.ns, SeenTTL: 168 * time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	// The processor's keys: 400 eSIMs' lifecycles, as ingest publishes them.
	const esims = 400
	in := r.start(t, st, instOpts{})
	bodies := lifecycles(rand.New(rand.NewPCG(7, 7)), esims, false)
	bodyBytes := 0
	for _, b := range bodies {
		r.publish(t, b, true)
		bodyBytes += len(b)
	}
	poll.Until(t, "all processed", func() bool { return r.quiet(t) })
	in.stop()

	s, err := r.js.Stream(ctx, r.names.Stream(stream.Events))
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	msgs := info.State.Msgs
	t.Logf("ESIM_EVENTS: %d events, bodies %.0f B each on average, stream accounting %.0f B per event",
		msgs, float64(bodyBytes)/float64(len(bodies)), float64(info.State.Bytes)/float64(msgs))
	ns, err := r.js.Stream(ctx, r.names.Stream(stream.Notify))
	if err != nil {
		t.Fatal(err)
	}
	ninfo, err := ns.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("ESIM_NOTIFY: %d intents (%.2f per event), %.0f B per intent", ninfo.State.Msgs,
		float64(ninfo.State.Msgs)/float64(msgs), float64(ninfo.State.Bytes)/float64(max(ninfo.State.Msgs, 1)))
	if srv := r.srv.Embedded; srv != nil {
		dir := filepath.Join(srv.JetStreamConfig().StoreDir, "$G", "streams", r.names.Stream(stream.Events))
		t.Logf("ESIM_EVENTS on disk (one replica): %.0f B per event (%s)", float64(duSize(t, dir))/float64(msgs), dir)
	}

	// The notifier's keys of each eSIM: its contact and index entry, and
	// the claim and log entry of its three messages (activation, 80 %, 100 %).
	now := time.Now()
	for i := range esims {
		iccid := fmt.Sprintf("8901%08d", i)
		tx := fmt.Sprintf("tx-ORD%05d", i-i%4)
		if err := st.PutContact(ctx, store.Contact{TransactionID: tx, Name: "Alex Example", Email: "alex.example@mail.example",
			Phone: "+15005550006", Locale: "en", ICCIDs: []string{iccid}, UpdatedAt: now}); err != nil {
			t.Fatal(err)
		}
		for _, id := range []string{"activation:" + iccid + ":E" + fmt.Sprint(i), "low_data:" + iccid + ":E" + fmt.Sprint(i) + ":b1:80",
			"low_data:" + iccid + ":E" + fmt.Sprint(i) + ":b1:100"} {
			if _, err := st.Claim(ctx, id, "notifier-1/8f3a", time.Minute); err != nil {
				t.Fatal(err)
			}
			if err := st.Finish(ctx, id, "notifier-1/8f3a", store.ClaimSent); err != nil {
				t.Fatal(err)
			}
			kind, _, _ := strings.Cut(id, ":")
			if err := st.AppendNotification(ctx, store.Notification{ID: id, Kind: kind, ICCID: iccid, Channel: "email", Status: "sent", Attempt: 1, SentAt: now}); err != nil {
				t.Fatal(err)
			}
		}
	}

	// MEMORY USAGE of every key, by kind.
	type tally struct{ keys, bytes int64 }
	kinds := map[string]*tally{}
	err = client.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
		iter := m.Scan(ctx, 0, redisstore.Prefix(r.ns)+"*", 1000).Iterator()
		for iter.Next(ctx) {
			k := iter.Val()
			kind := strings.SplitN(strings.TrimPrefix(k, redisstore.Prefix(r.ns)+"{"), ":", 2)[0]
			n, err := m.MemoryUsage(ctx, k).Result()
			if err != nil {
				return err
			}
			// ForEachMaster runs the primaries at once.
			footprintMu.Lock()
			if kinds[kind] == nil {
				kinds[kind] = &tally{}
			}
			kinds[kind].keys++
			kinds[kind].bytes += n
			footprintMu.Unlock()
		}
		return iter.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]string{"o": "order", "p": "profile", "s": "seen mark", "c": "claim", "l": "notification log", "k": "contact", "ki": "contact index"}
	var order []string
	for k := range kinds {
		order = append(order, k)
	}
	sort.Strings(order)
	for _, k := range order {
		v := kinds[k]
		t.Logf("Redis %-16s %5d keys, %4d B each (MEMORY USAGE), %6.0f B per eSIM", names[k], v.keys, v.bytes/v.keys, float64(v.bytes)/esims)
	}
}

// duSize returns the bytes of the files under dir.
func duSize(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	err := filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			n += fi.Size()
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

var footprintMu sync.Mutex
