module github.com/esimflow/esimflow/chaos

go 1.26.8

require (
	github.com/emersion/go-smtp v0.25.1
	github.com/esimflow/esimflow/ingest v0.0.0
	github.com/esimflow/esimflow/notifier v0.0.0
	github.com/esimflow/esimflow/processor v0.0.0
	github.com/esimflow/esimflow/shared v0.0.0
	github.com/nats-io/nats.go v1.55.0
	github.com/redis/go-redis/v9 v9.23.0
)

require (
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/emersion/go-sasl v0.0.0-20241020182733-b788ff22d5a6 // indirect
	github.com/klauspost/compress v1.20.3 // indirect
	github.com/nats-io/nkeys v0.4.16 // indirect
	github.com/nats-io/nuid v1.0.1 // indirect
	github.com/valyala/fastjson v1.6.10 // indirect
	github.com/wneessen/go-mail v0.8.1 // indirect
	go.uber.org/atomic v1.12.0 // indirect
	golang.org/x/crypto v0.58.0 // indirect
	golang.org/x/sys v0.49.0 // indirect
	golang.org/x/text v0.43.0 // indirect
	golang.org/x/time v0.16.0 // indirect
)

replace (
	github.com/esimflow/esimflow/ingest => ../ingest
	github.com/esimflow/esimflow/notifier => ../notifier
	github.com/esimflow/esimflow/processor => ../processor
	github.com/esimflow/esimflow/shared => ../shared
)
