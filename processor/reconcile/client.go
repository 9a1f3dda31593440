package reconcile

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Paths of the provider's query API.
const (
	PathQuery = "/api/v1/open/esim/query"
	// PageSize is the profiles asked for per page (the provider's largest).
	PageSize = 100
)

// queryRequest is esim/query's body: a time range of orders and a page.
type queryRequest struct {
	StartTime string `json:"startTime"`
	EndTime   string `json:"endTime"`
	Pager     pager  `json:"pager"`
}

type pager struct {
	PageNum  int `json:"pageNum"`
	PageSize int `json:"pageSize"`
	Total    int `json:"total,omitempty"`
}

// Profile is one entry of esim/query's esimList: a subscription as the
// provider knows it now.
type Profile struct {
	EsimTranNo    string `json:"esimTranNo"`
	OrderNo       string `json:"orderNo"`
	TransactionID string `json:"transactionId"`
	ICCID         string `json:"iccid"`
	// ActivationCode is the LPA string (ac), QRCodeURL its picture and
	// ShortURL the install link: what GOT_RESOURCE does not carry.
	ActivationCode string `json:"ac"`
	QRCodeURL      string `json:"qrCodeUrl"`
	ShortURL       string `json:"shortUrl"`
	OrderStatus    string `json:"orderStatus"`
	EsimStatus     string `json:"esimStatus"`
	SmdpStatus     string `json:"smdpStatus,omitempty"`
	TotalVolume    int64  `json:"totalVolume"`
	OrderUsage     int64  `json:"orderUsage"`
	ExpiredTime    string `json:"expiredTime,omitempty"`
	UpdateTime     string `json:"updateTime,omitempty"`
}

type queryReply struct {
	Success   bool   `json:"success"`
	ErrorCode string `json:"errorCode"`
	ErrorMsg  string `json:"errorMsg"`
	Obj       struct {
		EsimList []Profile `json:"esimList"`
		Pager    pager     `json:"pager"`
	} `json:"obj"`
}

// client calls the query API of one provider account, signed as eSIM
// Access asks: RT-AccessCode, RT-Timestamp, RT-RequestID and RT-Signature,
// the hex HMAC-SHA256 under the secret of timestamp, request id, access
// code and body. The secret itself is never sent.
type client struct {
	base, accessCode, secret string
	http                     *http.Client
}

// errRetry is an answer worth retrying after a wait: 429 or 5xx.
type errRetry struct {
	status int
	after  time.Duration
}

func (e *errRetry) Error() string { return fmt.Sprintf("HTTP %d", e.status) }

// page asks for one page of the orders made in [from, to].
func (c *client) page(ctx context.Context, from, to time.Time, num int) ([]Profile, int, error) {
	body, err := json.Marshal(queryRequest{StartTime: from.UTC().Format(time.RFC3339), EndTime: to.UTC().Format(time.RFC3339),
		Pager: pager{PageNum: num, PageSize: PageSize}})
	if err != nil {
		return nil, 0, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(c.base, "/")+PathQuery, bytes.NewReader(body))
	if err != nil {
		return nil, 0, err
	}
	c.sign(req, body)
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, 0, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return nil, 0, fmt.Errorf("read answer: %w", err)
	}
	if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode >= 500 {
		after, _ := strconv.Atoi(resp.Header.Get("Retry-After"))
		return nil, 0, &errRetry{status: resp.StatusCode, after: time.Duration(after) * time.Second}
	}
	var r queryReply
	if err := json.Unmarshal(raw, &r); err != nil {
		return nil, 0, fmt.Errorf("HTTP %d, not the provider's envelope: %w", resp.StatusCode, err)
	}
	if resp.StatusCode != http.StatusOK || !r.Success {
		return nil, 0, fmt.Errorf("HTTP %d, error %s: %s", resp.StatusCode, r.ErrorCode, r.ErrorMsg)
	}
	return r.Obj.EsimList, r.Obj.Pager.Total, nil
}

func (c *client) sign(req *http.Request, body []byte) {
	var id [16]byte
	_, _ = rand.Read(id[:]) // crypto/rand does not fail (Go 1.24+)
	ts, rid := strconv.FormatInt(time.Now().UnixMilli(), 10), hex.EncodeToString(id[:])
	mac := hmac.New(sha256.New, []byte(c.secret))
	mac.Write([]byte(ts + rid + c.accessCode))
	mac.Write(body)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("RT-AccessCode", c.accessCode)
	req.Header.Set("RT-Timestamp", ts)
	req.Header.Set("RT-RequestID", rid)
	req.Header.Set("RT-Signature", hex.EncodeToString(mac.Sum(nil)))
}

var errBudget = errors.New("budget spent")
