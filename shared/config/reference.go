package config

import (
	"fmt"
	"strings"
)

// Reference is docs/configuration.md: every setting by section, from the
// same table Load reads, with the notes that need more than a table row.
// `go test ./shared/config -update` writes it; the test fails when the file
// differs.
func Reference() string {
	var b strings.Builder
	b.WriteString(`# Configuration

<!-- Generated from shared/config/settings.go by ` + "`go test ./shared/config -update`" + `; do not edit. -->

Every setting is an environment variable; the defaults run the all-in-one on a
laptop. Each service reads only its sections: ingest reads Common, Logging,
Internal API, NATS and Ingest; the processor and the notifier add Store and their
own section; the all-in-one reads them all. Secrets are redacted when a process
logs its configuration at start-up: URLs keep their hosts, other secrets show only
that they are set. A value that does not parse or makes no sense stops the
process with a message naming the variable.
`)
	for _, sec := range Sections() {
		fmt.Fprintf(&b, "\n## %s\n\n", sec.Title)
		if sec.Intro != "" {
			b.WriteString(sec.Intro + "\n\n")
		}
		b.WriteString("| setting | default | meaning |\n| --- | --- | --- |\n")
		for _, s := range sec.Settings {
			def := "empty"
			if s.Default != "" {
				def = "`" + s.Default + "`"
			}
			meaning := s.Meaning
			if s.Secret {
				meaning += " (secret)"
			}
			fmt.Fprintf(&b, "| `%s` | %s | %s |\n", s.Env, def, meaning)
		}
	}
	b.WriteString(notes)
	return b.String()
}

const notes = `
## Notes

Durability: the embedded server fsyncs before every ack by default, so a 200
survives a power loss. ` + "`ESIMFLOW_EMBEDDED_SYNC=2m`" + ` (NATS's own default) is much
faster, and risks losing the events acked in the last interval if the machine
loses power (not if only the process dies). On a cluster, use 3 replicas.

Memory: unless ` + "`GOGC`" + ` is set, ingest runs Go's collector at ` + "`GOGC=200`" + ` (about a
tenth less CPU per request for a few MiB more heap), and unless ` + "`GOMEMLIMIT`" + ` is set
it keeps a 24 MiB soft memory limit (` + "`GOMEMLIMIT=off`" + ` removes it); the all-in-one
keeps a 100 MiB one. The processor and the notifier run at ` + "`GOGC=400`" + ` unless ` + "`GOGC`" + `
is set (a fifth less CPU per event; the processor's peak RSS 33 → 49 MiB).

Tracing: set the standard OpenTelemetry variables (` + "`OTEL_EXPORTER_OTLP_ENDPOINT`" + `,
or ` + "`OTEL_TRACES_EXPORTER=otlp` with `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`" + `,
` + "`OTEL_SERVICE_NAME`" + `, …) and each webhook becomes one trace: the request in ingest,
the event in the processor, the intent and each send in the notifier, the context
carried in NATS message headers (` + "`traceparent`" + `). Off unless configured.

The operator CLI also reads ` + "`ESIMFLOW_PROVIDER_API_URL`, `ESIMFLOW_PROVIDER_ACCESS_CODE`" + ` and
` + "`ESIMFLOW_PROVIDER_SECRET_KEY`" + ` for ` + "`esimflow webhook set`" + `, and ` + "`ESIMFLOW_AIRALO_API_URL`" + `,
` + "`ESIMFLOW_AIRALO_CLIENT_ID`, `ESIMFLOW_AIRALO_CLIENT_SECRET`" + ` for ` + "`esimflow webhook set --provider airalo`" + `
(see ` + "`esimflow webhook set --help`" + `).
`
