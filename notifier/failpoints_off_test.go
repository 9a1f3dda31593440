//go:build !failpoints

package notifier

import (
	"bytes"
	"testing"

	"github.com/esimflow/esimflow/notifier/channel"
	"github.com/esimflow/esimflow/shared/store/kvstore"
)

// TestNoFailpointDecorators: without the failpoints tag, New installs the
// chaos suite's decorators as the identity — the store and channels the
// handler uses are the production ones.
func TestNoFailpointDecorators(t *testing.T) {
	var st Store = &kvstore.Store{}
	var ch Channel = channel.NewConsole(&bytes.Buffer{})
	if failpointStore(st) != st || failpointChannel(ch, st, "owner") != ch {
		t.Error("a failpoint decorator wraps the store or a channel")
	}
}
