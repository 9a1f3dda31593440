package stream_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/esimflow/esimflow/shared/natstest"
	"github.com/esimflow/esimflow/shared/stream"
	"github.com/esimflow/esimflow/shared/testns"
	"github.com/nats-io/nats.go/jetstream"
)

var limits = stream.Limits{Replicas: 1, EventsMaxAge: 720 * time.Hour, EventsMaxBytes: -1, MaxDeliver: 10}

func servers(t *testing.T) map[string]func(*testing.T) *natstest.Server {
	return map[string]func(*testing.T) *natstest.Server{
		"embedded": func(t *testing.T) *natstest.Server { return natstest.StartEmbedded(t) },
		"external": func(t *testing.T) *natstest.Server { return natstest.External(t) },
	}
}

func TestEnsureIdempotent(t *testing.T) {
	for name, srv := range servers(t) {
		t.Run(name, func(t *testing.T) {
			js, names := setup(t, srv(t))
			ctx := context.Background()
			for range 2 {
				p, n, err := stream.Ensure(ctx, js, names, limits)
				if err != nil {
					t.Fatal(err)
				}
				if p.CachedInfo().Name != names.Consumer("processor") || n.CachedInfo().Name != names.Consumer("notifier") {
					t.Errorf("consumers %s, %s", p.CachedInfo().Name, n.CachedInfo().Name)
				}
			}
			s, err := js.Stream(ctx, names.Stream(stream.Events))
			if err != nil {
				t.Fatal(err)
			}
			cfg := s.CachedInfo().Config
			if cfg.Discard != jetstream.DiscardNew || cfg.Storage != jetstream.FileStorage || cfg.Duplicates != 2*time.Minute {
				t.Errorf("events stream config %+v", cfg)
			}
		})
	}
}

// TestEnsureAllowsAtomicPublish: on a server that takes atomic batches
// (2.12+), ESIM_EVENTS and ESIM_NOTIFY allow them, so the all-in-one's
// publishers batch; the other streams, and every stream on Debian's
// 2.9.10, do not, and Ensure still succeeds there.
func TestEnsureAllowsAtomicPublish(t *testing.T) {
	for name, srv := range servers(t) {
		t.Run(name, func(t *testing.T) {
			js, names := setup(t, srv(t))
			ctx := context.Background()
			if _, _, err := stream.Ensure(ctx, js, names, limits); err != nil {
				t.Fatal(err)
			}
			for _, base := range []string{stream.Events, stream.Notify, stream.DLQ, stream.Rejected} {
				s, err := js.Stream(ctx, names.Stream(base))
				if err != nil {
					t.Fatal(err)
				}
				want := name == "embedded" && (base == stream.Events || base == stream.Notify)
				if got := s.CachedInfo().Config.AllowAtomicPublish; got != want {
					t.Errorf("%s on %s: atomic publish %v, want %v", base, js.Conn().ConnectedServerVersion(), got, want)
				}
			}
		})
	}
}

// TestFullStreamRefusesNew shows discard-new: when ESIM_EVENTS is full a publish
// fails (ingest answers 503) instead of an unprocessed event being dropped.
func TestFullStreamRefusesNew(t *testing.T) {
	js, names := setup(t, natstest.StartEmbedded(t))
	l := limits
	l.EventsMaxBytes = 4096
	ctx := context.Background()
	if _, _, err := stream.Ensure(ctx, js, names, l); err != nil {
		t.Fatal(err)
	}
	var err error
	for i := 0; i < 100 && err == nil; i++ {
		_, err = js.Publish(ctx, names.EventSubject("UNKNOWN"), make([]byte, 512))
	}
	if err == nil {
		t.Fatal("a full stream kept accepting events")
	}
	s, _ := js.Stream(ctx, names.Stream(stream.Events))
	info, _ := s.Info(ctx)
	if info.State.FirstSeq != 1 {
		t.Errorf("first sequence %d: old events were dropped", info.State.FirstSeq)
	}
}

func TestEnsureRejectsBadLimits(t *testing.T) {
	js, names := setup(t, natstest.StartEmbedded(t))
	l := limits
	l.MaxDeliver = 1
	if _, _, err := stream.Ensure(context.Background(), js, names, l); err == nil {
		t.Error("max deliver 1 was accepted")
	}
}

// TestEnsureDetectsChangedStream: a stream someone changed by hand (here its
// subjects) is put back; one that cannot be is reported.
func TestEnsureDetectsMismatch(t *testing.T) {
	js, names := setup(t, natstest.StartEmbedded(t))
	ctx := context.Background()
	// A stream of the same name with memory storage cannot be updated to file.
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: names.Stream(stream.Events), Subjects: []string{names.EventSubject("x")}, Storage: jetstream.MemoryStorage}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := stream.Ensure(ctx, js, names, limits); err == nil {
		t.Error("a stream with the wrong storage was accepted")
	} else if !errors.Is(err, stream.ErrServerIgnoredSetting) {
		t.Logf("refused by the server itself: %v", err)
	}
}

func setup(t *testing.T, srv *natstest.Server) (jetstream.JetStream, stream.Names) {
	t.Helper()
	js, err := jetstream.New(srv.Connect(t))
	if err != nil {
		t.Fatal(err)
	}
	ns := testns.New(t)
	srv.RemoveNamespace(t, ns)
	names := stream.NewNames(ns)
	return js, names
}
