package kvstore_test

import (
	"context"
	"testing"

	"github.com/esimflow/esimflow/shared/natstest"
	"github.com/esimflow/esimflow/shared/store"
	"github.com/esimflow/esimflow/shared/store/kvstore"
	"github.com/esimflow/esimflow/shared/store/storetest"
	"github.com/esimflow/esimflow/shared/testns"
	"github.com/nats-io/nats.go/jetstream"
)

// The suite runs against the newest server in-process and, when
// ESIMFLOW_TEST_NATS_URL is set, against that one (Debian's 2.9.10 here).
func TestConformance(t *testing.T) {
	for name, start := range map[string]func(testing.TB) *natstest.Server{
		"embedded": natstest.StartEmbedded,
		"external": natstest.External,
	} {
		t.Run(name, func(t *testing.T) {
			srv := start(t)
			js, err := jetstream.New(srv.Connect(t))
			if err != nil {
				t.Fatal(err)
			}
			storetest.Run(t, func(t *testing.T, opts storetest.Options) store.Store {
				ns := testns.New(t)
				s, err := kvstore.New(context.Background(), js, kvstore.Options{Namespace: ns, SeenTTL: opts.SeenTTL})
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() {
					for _, b := range []string{"state", "seen"} {
						_ = js.DeleteKeyValue(context.Background(), ns+"_esimflow_"+b)
					}
				})
				return s
			})
		})
	}
}
