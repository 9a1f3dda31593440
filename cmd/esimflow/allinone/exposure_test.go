package allinone_test

import (
	"context"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/esimflow/esimflow/cmd/esimflow/allinone"
	"github.com/esimflow/esimflow/shared/config"
	"github.com/esimflow/esimflow/shared/natstest"
	"github.com/esimflow/esimflow/shared/testns"
)

// TestSecurityAllInOneRefusesOpenAdminAndIngest: `esimflow run` with its
// internal API or its webhook receiver on every interface and no guard does
// not start, and says which setting to add; with the guard it starts.
func TestSecurityAllInOneRefusesOpenAdminAndIngest(t *testing.T) {
	nc := natstest.Start(t)
	for _, tc := range []struct {
		name      string
		env       map[string]string
		adminAny  bool // admin listener on every interface
		ingestAny bool
		want      string // "" = starts
	}{
		{name: "admin open", adminAny: true, want: "ESIMFLOW_ADMIN_TOKEN"},
		{name: "ingest open", ingestAny: true, want: "ESIMFLOW_INGEST_TOKENS"},
		{name: "admin with token, ingest with tokens", adminAny: true, ingestAny: true,
			env: map[string]string{"ESIMFLOW_ADMIN_TOKEN": "t0ken", "ESIMFLOW_INGEST_TOKENS": "p4th"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			env := map[string]string{"ESIMFLOW_NATS_URL": nc.URL, "ESIMFLOW_NAMESPACE": testns.New(t)}
			for k, v := range tc.env {
				env[k] = v
			}
			cfg, err := config.Load(func(k string) string { return env[k] })
			if err != nil {
				t.Fatal(err)
			}
			listen := func(any bool) net.Listener {
				addr := "127.0.0.1:0"
				if any {
					addr = ":0"
				}
				ln, err := net.Listen("tcp", addr)
				if err != nil {
					t.Fatal(err)
				}
				return ln
			}
			deps := allinone.Deps{Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Messages: io.Discard, Banner: io.Discard,
				HTTP: listen(tc.ingestAny), Admin: listen(tc.adminAny)}
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			err = allinone.Run(ctx, cfg, deps)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("refused a guarded system: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("Run = %v, want a refusal naming %s", err, tc.want)
			}
		})
	}
}
