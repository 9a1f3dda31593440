// Package binaries holds the test that builds the three service binaries and
// runs them as separate processes against one NATS and one Redis, the way a
// production deployment does.
package binaries
