package harness

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// ServeBaseline is the baseline handler ingest is measured against: the least
// a Go service can do and still answer 200 only for a stored event — read the
// body, check it is JSON, publish it to JetStream with a Nats-Msg-Id and wait
// for the PubAck. No verification, no decoding into an event, no metrics. The
// harness runs it as its own process (esimbench baseline-handler), like
// ingest, so both are measured from outside the load generator.
func ServeBaseline(ctx context.Context, log *slog.Logger, addr, natsURL, subject string) error {
	nc, err := nats.Connect(natsURL, nats.Name("esimbench baseline"))
	if err != nil {
		return fmt.Errorf("baseline: connect %s: %w", natsURL, err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("baseline: jetstream: %w", err)
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil || !json.Valid(body) {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		sum := sha256.Sum256(body)
		pctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if _, err := js.Publish(pctx, subject, body, jetstream.WithMsgID(hex.EncodeToString(sum[:]))); err != nil {
			http.Error(w, "unavailable", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"received":true}`))
	})
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("baseline: listen %s: %w", addr, err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 2 * time.Second}
	stop := context.AfterFunc(ctx, func() {
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := srv.Shutdown(sctx); err != nil {
			log.Warn("baseline: shutdown", "err", err)
		}
	})
	defer stop()
	if err := srv.Serve(l); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("baseline: serve: %w", err)
	}
	return nil
}
