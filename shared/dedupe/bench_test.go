package dedupe_test

import (
	"testing"

	"github.com/esimflow/esimflow/shared/dedupe"
	"github.com/esimflow/esimflow/shared/event"
)

func BenchmarkKey(b *testing.B) {
	body := []byte(`{"eventType":"DATA_USAGE","iccid":"8901234567890123456","usedVolume":859832320,"totalVolume":1073741824,"usagePercent":80,"timestamp":"2024-01-16T08:00:00Z"}`)
	ev, err := event.Decode(body)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = dedupe.Key(ev, nil, body)
	}
}

func BenchmarkAppendKey(b *testing.B) {
	body := []byte(`{"eventType":"DATA_USAGE","iccid":"8901234567890123456","usedVolume":859832320,"totalVolume":1073741824,"usagePercent":80,"timestamp":"2024-01-16T08:00:00Z"}`)
	ev, err := event.Decode(body)
	if err != nil {
		b.Fatal(err)
	}
	buf := make([]byte, 0, 64)
	b.ReportAllocs()
	for b.Loop() {
		buf = dedupe.AppendKey(buf[:0], ev, nil, body)
	}
}
