package stream

import (
	"errors"
	"testing"
	"time"
)

// An old server that drops a field it does not know returns a config without
// it; start-up must stop with ErrServerIgnoredSetting rather than run weaker.
func TestCompareCatchesDroppedFields(t *testing.T) {
	l := Limits{Replicas: 1, EventsMaxBytes: -1, MaxDeliver: 10}
	n := NewNames("x")
	want := n.StreamConfigs(l)[0]
	got := want
	got.Duplicates = 0
	if err := compareStream(want, got); !errors.Is(err, ErrServerIgnoredSetting) {
		t.Errorf("dropped duplicate window: err = %v", err)
	}
	if err := compareStream(want, want); err != nil {
		t.Errorf("equal configs: %v", err)
	}
	wc := n.ConsumerConfig(ProcessorConsumer, l)
	gc := wc
	gc.MaxDeliver = -1
	gc.InactiveThreshold = 5 * time.Second
	if err := compareConsumer(wc, gc); !errors.Is(err, ErrServerIgnoredSetting) {
		t.Errorf("dropped max deliver: err = %v", err)
	}
}
