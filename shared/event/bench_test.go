package event_test

import (
	"testing"

	"github.com/esimflow/esimflow/shared/event"
)

func BenchmarkDecode(b *testing.B) {
	for name, body := range map[string]string{
		"eventType":  `{"eventType":"DATA_USAGE","iccid":"8901234567890123456","usedVolume":859832320,"totalVolume":1073741824,"usagePercent":80,"timestamp":"2024-01-16T08:00:00Z"}`,
		"notifyType": `{"notifyType":"DATA_USAGE","content":{"orderNo":"B23110718759768","transactionId":"5102378090678","iccid":"89852000263318806140","totalVolume":121313,"orderUsage":232,"remain":12123}}`,
	} {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if _, err := event.Decode([]byte(body)); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
