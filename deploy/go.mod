module github.com/esimflow/esimflow/deploy

go 1.26.8

replace (
	github.com/esimflow/esimflow/cmd/esimflow => ../cmd/esimflow
	github.com/esimflow/esimflow/ingest => ../ingest
	github.com/esimflow/esimflow/notifier => ../notifier
	github.com/esimflow/esimflow/processor => ../processor
	github.com/esimflow/esimflow/shared => ../shared
)

require (
	github.com/moby/buildkit v0.34.2
	golang.org/x/mod v0.41.0
)

require (
	github.com/containerd/typeurl/v2 v2.3.0 // indirect
	github.com/pkg/errors v0.9.1 // indirect
	github.com/planetscale/vtprotobuf v0.6.1-0.20240319094008-0393e58bdf10 // indirect
	google.golang.org/protobuf v1.36.12 // indirect
)
