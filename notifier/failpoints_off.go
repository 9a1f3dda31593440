//go:build !failpoints

package notifier

// Without the failpoints tag the chaos suite's decorators are the identity:
// production builds carry neither its crash points nor its planted bugs.

func failpointStore(s Store) Store                           { return s }
func failpointChannel(ch Channel, _ Store, _ string) Channel { return ch }
