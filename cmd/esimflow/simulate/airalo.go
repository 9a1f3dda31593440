package simulate

import (
	"crypto/hmac"
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"

	"github.com/esimflow/esimflow/shared/event"
)

// Providers the simulator speaks for: the webhook format and signature.
const (
	ESIMAccess = "esimaccess"
	Airalo     = "airalo"
)

// AiraloSignatureHeader carries Airalo's signature: the hex HMAC-SHA512 of
// the raw body keyed with the client secret.
const AiraloSignatureHeader = "airalo-signature"

// AiraloSign returns what signs a webhook as Airalo does.
func AiraloSign(secret string) func(*http.Request, []byte) {
	return func(r *http.Request, body []byte) {
		m := hmac.New(sha512.New, []byte(secret))
		m.Write(body)
		r.Header.Set(AiraloSignatureHeader, hex.EncodeToString(m.Sum(nil)))
	}
}

// airaloBody is the webhook Airalo sends for a lifecycle event, if any:
// Airalo notifies low data (75 % and 90 % used) and validity (3 and 1 days
// left), in a body with no type field, the level as text and the share of
// data remaining; it has no webhook for orders or status changes.
func airaloBody(plan []byte, packageName string) ([]byte, bool, error) {
	ev, err := event.Decode(plan)
	if err != nil {
		return nil, false, fmt.Errorf("plan event %s: %w", plan, err)
	}
	level := ""
	switch {
	case ev.Type == event.DataUsage && ev.UsagePercent >= 90:
		level = "90%"
	case ev.Type == event.DataUsage && ev.UsagePercent >= 75:
		level = "75%"
	case ev.Type == event.ValidityUsage && (ev.RemainDays == 3 || ev.RemainDays == 1):
		level = strconv.FormatInt(ev.RemainDays, 10) + "days"
	default:
		return nil, false, nil
	}
	remaining := 100 - int(ev.UsagePercent)
	if ev.Type == event.ValidityUsage {
		remaining = -1 // not said by a validity report
	}
	body := map[string]any{"level": level, "package_name": packageName, "iccid": ev.ICCID}
	if remaining >= 0 {
		body["remaining_percentage"] = remaining
	}
	b, err := json.Marshal(body)
	return b, err == nil, err
}
