package intent

import (
	"errors"
	"fmt"

	"github.com/segmentio/encoding/json"
)

// Decode reads an intent as published on ESIM_NOTIFY. It is on every
// message's path in the notifier, so it decodes with segmentio/encoding,
// as the stores decode state (docs/adr/0016): the same JSON, read in about
// a third of encoding/json's CPU (BenchmarkDecode). An intent without its
// id or ICCID cannot be claimed or sent, and is an error too.
func Decode(b []byte) (Intent, error) {
	var in Intent
	if err := json.Unmarshal(b, &in); err != nil {
		return Intent{}, fmt.Errorf("undecodable intent: %w", err)
	}
	if in.ID == "" || in.ICCID == "" {
		return Intent{}, errors.New("undecodable intent: no id or iccid")
	}
	return in, nil
}
