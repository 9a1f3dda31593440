package reconcile_test

import (
	"strings"
	"testing"
	"time"

	"github.com/esimflow/esimflow/processor/reconcile"
	"github.com/esimflow/esimflow/shared/event"
	"github.com/esimflow/esimflow/shared/store"
)

// Diff publishes only what the state lacks, in bodies the decoder reads.
func TestDiff(t *testing.T) {
	p := reconcile.Profile{OrderNo: "O1", TransactionID: "T1", ICCID: "8901", EsimTranNo: "E1", ActivationCode: "LPA:1$s$M",
		QRCodeURL: "https://p.example/qr", ShortURL: "https://p.example/i", OrderStatus: "GOT_RESOURCE", EsimStatus: "IN_USE",
		TotalVolume: 1 << 30, OrderUsage: (1 << 30) * 80 / 100, UpdateTime: "2026-01-01T01:00:00Z"}
	known := store.Order{OrderNo: "O1", Status: "GOT_RESOURCE", Profiles: []string{"8901"}}
	current := store.Profile{ICCID: "8901", Status: "ACTIVATED", UsedVolume: p.OrderUsage, TotalVolume: p.TotalVolume,
		Install: &store.Install{ActivationCode: "LPA:1$s$M"}}
	for _, tt := range []struct {
		name    string
		order   store.Order
		profile store.Profile
		types   []event.Type
		install bool
	}{
		{"in step (IN_USE is ACTIVATED)", known, current, nil, false},
		{"never heard of", store.Order{}, store.Profile{}, []event.Type{event.OrderStatus, event.EsimStatus, event.DataUsage}, true},
		{"install data missing", known, func() store.Profile { q := current; q.Install = nil; return q }(), []event.Type{event.OrderStatus}, true},
		{"activation missed", known, func() store.Profile { q := current; q.Status = "GOT_RESOURCE"; return q }(), []event.Type{event.EsimStatus}, false},
		{"usage behind", known, func() store.Profile { q := current; q.UsedVolume /= 2; return q }(), []event.Type{event.DataUsage}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			bodies, install := reconcile.Diff(p, tt.order, tt.profile)
			if install != tt.install || len(bodies) != len(tt.types) {
				t.Fatalf("%d events, install %v; want %v, install %v:\n%s", len(bodies), install, tt.types, tt.install, bodies)
			}
			for i, b := range bodies {
				ev, err := event.Decode(b)
				if err != nil || ev.Type != tt.types[i] || !ev.Timestamp.Equal(time.Date(2026, 1, 1, 1, 0, 0, 0, time.UTC)) {
					t.Errorf("event %d %s: %+v, %v; want a %s at the provider's update time", i, b, ev, err, tt.types[i])
				}
				switch ev.Type {
				case event.OrderStatus:
					if len(ev.Profiles) != 1 || ev.Profiles[0].ActivationCode != p.ActivationCode || ev.Profiles[0].InstallURL != p.ShortURL {
						t.Errorf("order event lists %+v, want the profile with its install data", ev.Profiles)
					}
				case event.DataUsage:
					if ev.UsagePercent != 80 || strings.Contains(string(b), "esimTranNo") {
						t.Errorf("usage %s: want 80 %% and the subscription named as its reports name it (by order)", b)
					}
				}
			}
		})
	}
}
