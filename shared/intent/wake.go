package intent

import "encoding/json"

// Wake keys name what an intent waiting to be sent may be waiting for. The
// notifier parks a waiting intent under each of its keys; whoever stores
// the thing announces its key (on stream.Names.WakeSubject), and the parked
// intents are looked at again at once.
func WakeTx(transactionID string) string { return "tx:" + transactionID }

// WakeICCID: a contact listing the iccid, or an order link of the iccid.
func WakeICCID(iccid string) string { return "iccid:" + iccid }

// WakeIntent: the intent id is done with (sent, suppressed, dead-lettered),
// which a higher warning ordered after it waits for.
func WakeIntent(id string) string { return "intent:" + id }

// EncodeWake is the body of a wake-up announcing keys.
func EncodeWake(keys []string) []byte {
	b, _ := json.Marshal(keys) // a []string always encodes
	return b
}

// DecodeWake reads a wake-up's keys.
func DecodeWake(b []byte) ([]string, error) {
	var keys []string
	err := json.Unmarshal(b, &keys)
	return keys, err
}
