// Package deploy holds no code: its tests check what is deployed — the
// Dockerfiles, docker-compose.yml, the Prometheus and Grafana provisioning and
// the Kubernetes manifests — against the code, so a renamed setting, port,
// metric or stream fails a test here instead of a deployment.
//
// It is a module of its own outside go.work, so its test-only dependencies
// never change the versions the workspace builds with: run its tests with
// GOWORK=off (make test and make lint do).
package deploy
