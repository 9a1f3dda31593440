package store_test

import (
	"encoding/json"
	"fmt"
	"reflect"
	"syscall"
	"testing"
	"time"

	"github.com/esimflow/esimflow/shared/store"
)

// fullProfile is a profile at every bound the merge keeps (history,
// usage reports, periods, copies): the most a state encoding carries.
func fullProfile() store.Profile {
	t0 := time.Date(2026, 11, 1, 8, 0, 0, 0, time.UTC)
	p := store.Profile{ICCID: "8901000000000001234", OrderNo: "ORD00012", TransactionID: "tx-0000012", EsimTranNo: "E2611010800001",
		Status: "ACTIVATED", PreviousStatus: "GOT_RESOURCE", SmdpStatus: "ENABLED", OrderedBy: "provider",
		UsedVolume: 800 << 20, TotalVolume: 1 << 30, UsagePercent: 78.125, Bundle: "1G",
		Validity:       &store.Validity{Remain: 12, Total: 30, Unit: "DAY", ExpiresAt: t0.Add(30 * 24 * time.Hour), ReportedAt: t0},
		Install:        &store.Install{ActivationCode: "LPA:1$smdp.example.com$ABCDEF0123456789", QRCodeURL: "https://p.example.com/qr/abcdef.png"},
		BundlesTrimmed: map[string]int{"1G": 2}, UpdatedAt: t0.Add(time.Hour)}
	for i := range 3 {
		p.Bundles = append(p.Bundles, store.Bundle{ID: fmt.Sprintf("1G.%d", i), Subscription: "E2611010800001", Total: 1 << 30, Used: 500 << 20, Percent: 48.8, StartedAt: t0, Reports: 8})
	}
	for i := range 2 {
		p.Subscriptions = append(p.Subscriptions, store.Subscription{OrderNo: fmt.Sprintf("ORD%05d", i), TransactionID: "tx", EsimTranNo: "E26110108000", Since: t0})
	}
	for i := range 24 { // merge.UsageLimit
		p.Usage = append(p.Usage, store.UsageReport{Used: int64(i) << 25, Total: 1 << 30, Percent: float64(i) * 3.1, Subscription: "E2611010800001",
			At: t0.Add(time.Duration(i) * time.Hour), ProviderSeq: int64(i), Stored: store.Stored{Seq: uint64(1000 + i), DedupeKey: fmt.Sprintf("k-%032d", i), ReceivedAt: t0}})
	}
	for i := range 12 { // merge.PeriodLimit
		p.Periods = append(p.Periods, store.Period{ExpiresAt: t0.Add(time.Duration(i) * 720 * time.Hour), Subscription: "E2611010800001", Live: true})
	}
	for i := range 20 { // merge.HistoryLimit
		p.History = append(p.History, store.Transition{Status: "ACTIVATED", PreviousStatus: "GOT_RESOURCE", At: t0.Add(time.Duration(i) * time.Minute),
			ProviderSeq: int64(i), Stored: store.Stored{Seq: uint64(2000 + i), DedupeKey: fmt.Sprintf("k-%032d", i), ReceivedAt: t0, Copies: []uint64{uint64(3000 + i)}}})
	}
	return p
}

// typicalProfile is a profile as BenchmarkThroughput's lifecycles leave
// most: a few transitions and usage reports, one bundle, some zero times.
func typicalProfile() store.Profile {
	t0 := time.Date(2026, 11, 1, 8, 0, 0, 0, time.UTC)
	p := store.Profile{ICCID: "8901000000000001234", OrderNo: "ORD00012", TransactionID: "tx-0000012", EsimTranNo: "E2611010800001",
		Status: "ACTIVATED", PreviousStatus: "GOT_RESOURCE", OrderedBy: "provider", UsedVolume: 800 << 20, TotalVolume: 1 << 30, UsagePercent: 78.1, Bundle: "1G", UpdatedAt: t0}
	p.Bundles = []store.Bundle{{ID: "1G", Total: 1 << 30, Used: 800 << 20, Percent: 78.1, StartedAt: t0, Reports: 2}}
	p.Subscriptions = []store.Subscription{{OrderNo: "ORD00012", TransactionID: "tx-0000012", Since: t0}}
	for i := range 2 {
		p.Usage = append(p.Usage, store.UsageReport{Used: int64(i) << 25, Total: 1 << 30, Percent: 40, At: t0, Stored: store.Stored{Seq: uint64(i), DedupeKey: "k-0123456789abcdef0123456789abcdef"}})
	}
	for i := range 3 {
		p.History = append(p.History, store.Transition{Status: "ACTIVATED", At: t0, Stored: store.Stored{Seq: uint64(i), DedupeKey: "k-0123456789abcdef0123456789abcdef", ReceivedAt: t0}})
	}
	return p
}

// TestStateCodecReadsJSON: the state encoding reads what encoding/json
// stored (states written before it, a profile's periods in their oldest
// form too), and encoding/json reads what it writes (an older processor
// sharing the store, a rollback).
func TestStateCodecReadsJSON(t *testing.T) {
	old := `{"iccid":"89","usedVolume":0,"totalVolume":0,"usagePercent":0,"periods":["2024-03-15T12:00:00Z","2024-02-14T12:00:00Z"]}`
	var p, want store.Profile
	if err := store.DecodeState([]byte(old), &p); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal([]byte(old), &want); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(p, want) || len(p.Periods) != 2 || !p.Periods[0].Live {
		t.Errorf("old profile read as %+v, want %+v", p, want)
	}
	for name, p := range map[string]store.Profile{"full": fullProfile(), "typical": typicalProfile(), "empty": {ICCID: "89"}} {
		stored, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		var got store.Profile
		if err := store.DecodeState(stored, &got); err != nil || !reflect.DeepEqual(got, p) {
			t.Errorf("%s: encoding/json's bytes read as %+v, %v", name, got, err)
		}
		b, err := store.EncodeState(p)
		if err != nil {
			t.Fatal(err)
		}
		got = store.Profile{}
		if err := json.Unmarshal(b, &got); err != nil || !reflect.DeepEqual(got, p) {
			t.Errorf("%s: encoding/json reads the state encoding's bytes as %+v, %v", name, got, err)
		}
		got = store.Profile{}
		if err := store.DecodeState(b, &got); err != nil || !reflect.DeepEqual(got, p) {
			t.Errorf("%s: round trip gives %+v, %v", name, got, err)
		}
	}
	o := store.Order{OrderNo: "O1", Status: "GOT_RESOURCE", Profiles: []string{"1", "2"}}
	b, err := store.EncodeState(o)
	var got store.Order
	if err != nil || json.Unmarshal(b, &got) != nil || !reflect.DeepEqual(got, o) {
		t.Errorf("order round trip: %+v, %v", got, err)
	}
}

// BenchmarkStateCodec is what ADR 16 chose by: a profile's encode and
// decode (a batch reads and writes each state it changes once), with
// encoding/json and with the state encoding. It reports CPU per operation
// too, which other processes on the machine do not change.
func BenchmarkStateCodec(b *testing.B) {
	codecs := []struct {
		name string
		enc  func(any) ([]byte, error)
		dec  func([]byte, any) error
	}{
		{"encoding-json", json.Marshal, json.Unmarshal},
		{"state", store.EncodeState, store.DecodeState},
	}
	for _, profile := range []struct {
		name string
		p    store.Profile
	}{{"typical", typicalProfile()}, {"full", fullProfile()}} {
		for _, c := range codecs {
			b.Run(profile.name+"/"+c.name, func(b *testing.B) {
				b.ReportAllocs()
				var n int
				cpu0 := cpuTime()
				for b.Loop() {
					data, err := c.enc(profile.p)
					if err != nil {
						b.Fatal(err)
					}
					var q store.Profile
					if err := c.dec(data, &q); err != nil {
						b.Fatal(err)
					}
					n = len(data)
				}
				b.ReportMetric(float64(cpuTime()-cpu0)/float64(b.N), "cpu-ns/op")
				b.ReportMetric(float64(n), "bytes")
			})
		}
	}
}

// cpuTime is the CPU time (user and system) this process used so far.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
