package template_test

import (
	"testing"

	"github.com/esimflow/esimflow/notifier/template"
)

// BenchmarkRender is one customer message rendered in every form (subject,
// text, HTML, SMS), as the notifier does once per intent.
func BenchmarkRender(b *testing.B) {
	set, err := template.New("")
	if err != nil {
		b.Fatal(err)
	}
	d := template.Data{Name: "Ada", ICCID: "8901234567890123456", OrderNo: "B1", Threshold: 80, UsedBytes: 859832320, TotalBytes: 1073741824, UsagePercent: 80}
	for _, kind := range []template.Kind{template.Activation, template.LowData} {
		b.Run(string(kind), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := set.Render(kind, "de", d); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
