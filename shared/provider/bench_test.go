package provider_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/esimflow/esimflow/shared/event"
)

// BenchmarkDecode reads each provider sample with its adapter: what
// ingest and the processor each pay per event body.
func BenchmarkDecode(b *testing.B) {
	files, _ := filepath.Glob(filepath.Join(fixtures, "*.json"))
	if len(files) == 0 {
		b.Skipf("no provider samples at %s", fixtures)
	}
	reg := registry(b)
	dc := event.Decoder{}
	for _, f := range files {
		body, err := os.ReadFile(f)
		if err != nil {
			b.Fatal(err)
		}
		a, _ := reg.Get(providerOf(f))
		b.Run(strings.TrimSuffix(filepath.Base(f), ".json"), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				_ = a.Decode(dc, body)
			}
		})
	}
}
