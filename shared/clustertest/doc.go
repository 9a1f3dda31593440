// Package clustertest runs local clusters of the real servers esimflow
// scales out on, as child processes on loopback ports: a NATS JetStream
// cluster (three nats-server processes joined by routes) and a Redis Cluster
// (three primaries with one replica each), each server with its own data
// directory.
//
// It serves three users: Go tests (NATSCluster and RedisCluster start a
// cluster for one test and stop it when the test ends, skipping the test when
// a server binary is missing), the chaos suite (NATSNodes and RedisNodes say
// how to start each server, so that the chaos supervisor runs, kills and
// restarts them like any other process; FormRedisCluster and WaitJetStream
// join them), and `make cluster` (cmd/cluster in the chaos module).
//
// Ports come from Ports: 20000–32767, outside the kernel's ephemeral range,
// so that a server killed with -9 finds its port free when it restarts.
// Nothing here touches a server it did not start.
package clustertest
