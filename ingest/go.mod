module github.com/esimflow/esimflow/ingest

go 1.26.8

require github.com/esimflow/esimflow/shared v0.0.0

replace github.com/esimflow/esimflow/shared => ../shared
