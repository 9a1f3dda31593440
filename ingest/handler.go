package ingest

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/esimflow/esimflow/ingest/verify"
	"github.com/esimflow/esimflow/shared/event"
	"github.com/esimflow/esimflow/shared/httpjson"
	providers "github.com/esimflow/esimflow/shared/provider"
	"github.com/esimflow/esimflow/shared/stream"
	"github.com/esimflow/esimflow/shared/telemetry"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// retryAfter is what a 503 or 429 asks the provider to wait, in seconds.
const retryAfter = "5"

// Handler answers webhook requests.
type Handler struct {
	pub     Publisher
	names   stream.Names
	maxBody int64
	timeout time.Duration
	// sender checks run before the body is read (allowlist, path token);
	// body checks need it (signatures).
	sender, signed verify.All
	// adapters are the providers of /webhooks/{provider}, by name, each
	// with its own verifier.
	adapters map[string]adapter
	// replays, when set, answers a signed message delivered before without
	// storing it again (Standard Webhooks: the webhook-id is signed).
	replays  replayGuard
	clientIP *verify.ClientIP
	limiter  *ipLimiter
	// traced is false when the tracer is a no-op: a request that carries no
	// trace context then starts no span (startSpan).
	traced   bool
	needIP   bool // a check reads the sender's address (senderIP)
	subjects eventSubjects
	bodies   *bodyPool
	msgs     *msgPool
	metrics  *metrics
	tracer   trace.Tracer
	log      *slog.Logger
}

// adapter is a provider's adapter and its verifier (nil: none configured).
type adapter struct {
	providers.Adapter
	verifier providers.Verifier
}

// replayGuard remembers the messages delivered; see verify.StandardWebhooks.
type replayGuard interface {
	Replayed(h http.Header) bool
	Delivered(h http.Header)
}

var received = []byte(`{"received":true}` + "\n")

// Webhook stores one provider event and answers 200 only once JetStream has
// it. Every refusal is counted by reason and logged once, without secrets.
// Its steps: admit the request (rate, sender, body, signature, replay), read
// the event from the verified bytes, store it.
func (h *Handler) Webhook(w http.ResponseWriter, r *http.Request) {
	h.webhook(w, r, providerESIMAccess)
}

// From is Webhook for the endpoints of one provider family: the events it
// stores count as that provider's (its last webhook, its usual gap).
func (h *Handler) From(provider string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.webhook(w, r, provider) })
}

func (h *Handler) webhook(w http.ResponseWriter, r *http.Request, provider string) {
	now := time.Now().UTC()
	r, span := h.startSpan(r)
	defer span.End()
	ip := h.senderIP(r)
	buf, ok := h.admit(w, r, ip)
	if !ok {
		return
	}
	defer h.bodies.put(buf)
	body := buf.b
	in, ok := h.parse(w, r, ip, body, now)
	if !ok {
		return
	}
	h.store(w, r, span, in, provider, now)
}

// startSpan starts the request's server span, continuing the sender's trace.
// With tracing off and no traceparent to carry on there is nothing to start:
// the request goes on as it came, with its context's span (a no-op one).
func (h *Handler) startSpan(r *http.Request) (*http.Request, trace.Span) {
	if !h.traced && len(r.Header["Traceparent"]) == 0 {
		return r, trace.SpanFromContext(r.Context())
	}
	ctx, span := h.tracer.Start(telemetry.ExtractHTTP(r.Context(), r.Header), "ingest webhook", trace.WithSpanKind(trace.SpanKindServer))
	return r.WithContext(ctx), span
}

// senderIP is the request's sender address when a check needs it (the rate
// limiter, the allowlist); otherwise the zero Addr, and only a refusal's log
// line reads it (refuse).
func (h *Handler) senderIP(r *http.Request) netip.Addr {
	if !h.needIP {
		return netip.Addr{}
	}
	return h.clientIP.Of(r)
}

// admit runs every check that decides whether a request may be stored and
// returns its body; false when it answered the request already.
func (h *Handler) admit(w http.ResponseWriter, r *http.Request, ip netip.Addr) (*bodyBuf, bool) {
	return h.admitSigned(w, r, ip, h.signed.Verify, h.replays)
}

// admitSigned is admit with the body's check and replay guard of one
// provider. The body is a pooled buffer: the caller puts it back once
// nothing refers to it (every publish that carries it has returned; the NATS
// client copies what it sends).
func (h *Handler) admitSigned(w http.ResponseWriter, r *http.Request, ip netip.Addr, signed func(verify.Request) error, replays replayGuard) (*bodyBuf, bool) {
	if !h.limiter.allow(ip) {
		w.Header().Set("Retry-After", "1")
		h.refuse(w, r, ip, http.StatusTooManyRequests, "rate_limited", "too many requests")
		return nil, false
	}
	vr := verify.Request{HTTP: r, Token: r.PathValue("token"), Sender: ip}
	if err := h.sender.Verify(vr); err != nil {
		h.refuseCheck(w, r, ip, err)
		return nil, false
	}
	buf, err := h.bodies.read(http.MaxBytesReader(w, r.Body, h.maxBody), r.ContentLength)
	body := buf.b
	h.metrics.bodyBytes.Observe(float64(len(body)))
	if err != nil {
		h.bodies.put(buf)
		if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
			h.refuse(w, r, ip, http.StatusRequestEntityTooLarge, outcomeTooLarge, "body larger than "+strconv.FormatInt(h.maxBody, 10)+" bytes")
			return nil, false
		}
		h.refuse(w, r, ip, http.StatusBadRequest, outcomeBadRequest, "could not read body")
		return nil, false
	}
	vr.Body = body
	if err := signed(vr); err != nil {
		h.bodies.put(buf)
		h.refuseCheck(w, r, ip, err)
		return nil, false
	}
	if replays != nil && replays.Replayed(r.Header) {
		// Stored already: answer as for a retry, so an honest sender stops.
		h.bodies.put(buf)
		h.metrics.received(event.Unknown, outcomeReplay)
		answerReceived(w)
		return nil, false
	}
	return buf, true
}

// incoming is a verified request's event: the bytes to store, and what
// they decode to (a decode error is the processor's to judge).
type incoming struct {
	data      []byte
	ev        event.Event
	decodeErr error
	// provider and adapter name who read the event, index which event of
	// the body it is: the stored message's headers.
	provider, adapter string
	index             int
}

// parse turns the verified body into the event to store; false when it
// answered the request already (invalid JSON, an unsupported type, a health
// check).
func (h *Handler) parse(w http.ResponseWriter, r *http.Request, ip netip.Addr, body []byte, now time.Time) (incoming, bool) {
	data, err := normalize(r, body, len(h.signed) == 0)
	if errors.Is(err, errUnsupportedType) {
		h.refuse(w, r, ip, http.StatusUnsupportedMediaType, "unsupported_type", err.Error())
		return incoming{}, false
	}
	if err != nil {
		h.reject(r.Context(), body, err, now)
		h.refuse(w, r, ip, http.StatusBadRequest, outcomeInvalid, err.Error())
		return incoming{}, false
	}
	ev, decodeErr := event.Decode(data)
	if errors.Is(decodeErr, event.ErrInvalidJSON) {
		h.reject(r.Context(), body, decodeErr, now)
		h.refuse(w, r, ip, http.StatusBadRequest, outcomeInvalid, "body is not valid JSON")
		return incoming{}, false
	}
	if ev.Type == event.CheckHealth {
		// The provider checks the endpoint right after the webhook is set:
		// answer, count, keep nothing.
		h.metrics.received(ev.Type, outcomeHealth)
		answerReceived(w)
		return incoming{}, false
	}
	return incoming{data: data, ev: ev, decodeErr: decodeErr, provider: providers.Default, adapter: defaultAdapterVersion}, true
}

// store publishes the event and answers: 200 once JetStream has it, 413
// when the stream refuses it for good, 503 (retry) when it does not answer.
// Anything that is JSON is stored, malformed or not: the processor judges
// it, and nothing the provider sent is lost.
func (h *Handler) store(w http.ResponseWriter, r *http.Request, span trace.Span, in incoming, provider string, now time.Time) {
	ack, err := h.publish(r.Context(), span, in, now)
	if h.failed(w, span, in, err) {
		return
	}
	if h.replays != nil {
		h.replays.Delivered(r.Header)
	}
	h.stored(in.ev.Type, ack)
	// A duplicate is a provider's retry of a stored event: it is alive too.
	h.metrics.arrivals.add(provider, now)
	answerReceived(w)
}

// publish stores one event, with its dedupe key as Nats-Msg-Id.
func (h *Handler) publish(ctx context.Context, span trace.Span, in incoming, now time.Time) (*jetstream.PubAck, error) {
	data, ev := in.data, in.ev
	key := in.key()
	// The message, its header map and the values' backing array come from a
	// pool and go back once the publish has returned (the NATS client
	// copies what it sends). Each value is capped at its own element; the
	// keys are canonical already, as nats.Header.Set would not change them
	// either.
	out := h.msgs.get()
	defer h.msgs.put(out)
	vals, hdr := out.vals[:], out.msg.Header
	vals[0], vals[1], vals[2] = now.Format(time.RFC3339Nano), in.provider, in.adapter
	hdr[stream.HeaderReceivedAt] = vals[0:1:1]
	hdr[stream.HeaderProvider] = vals[1:2:2]
	hdr[stream.HeaderAdapter] = vals[2:3:3]
	if in.index > 0 {
		vals[3] = strconv.Itoa(in.index)
		hdr[stream.HeaderEventIndex] = vals[3:4:4]
	}
	if key != "" {
		// An event with neither an id nor a time has no key: its content may
		// repeat as a new fact, so it is stored every time (docs/design.md,
		// "Dedupe keys"). Written here as jetstream.WithMsgID writes it,
		// without an option to allocate.
		vals[4] = key
		hdr[jetstream.MsgIDHeader] = vals[4:5:5]
	}
	msg := &out.msg
	msg.Subject, msg.Data = h.subjects.event(ev.Type), data
	if span.IsRecording() {
		span.SetAttributes(attribute.String("esimflow.event_type", string(ev.Type)), attribute.String("esimflow.dedupe_key", key))
	}
	telemetry.Inject(ctx, msg.Header)

	// The publish ends at its PubAck or its timeout, not when the sender
	// hangs up: once sent the event is stored either way (answered or not,
	// the sender's retry is a duplicate), and a deadline of its own keeps
	// the request's context free of a child to link and unlink (its done
	// channel and children map were some 350 bytes a request). The values
	// (the span, the chaos build's failpoints) stay.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), h.timeout)
	defer cancel()
	ack, err := h.pub.PublishMsg(ctx, msg)
	h.metrics.publishSeconds.Observe(time.Since(now).Seconds())
	return ack, err
}

// key is the event's dedupe key (provider.Key).
func (in incoming) key() string {
	return providers.Key(in.ev, in.decodeErr, in.data, in.index)
}

// failed answers a publish that failed, and reports whether it did.
func (h *Handler) failed(w http.ResponseWriter, span trace.Span, in incoming, err error) bool {
	if err == nil {
		return false
	}
	ev := in.ev
	if tooLargeToStore(err) {
		// Permanent: a retry of the same request gets the same answer, so
		// never 503 (the provider would retry it forever).
		span.SetStatus(codes.Error, "event too large to store")
		h.metrics.received(ev.Type, outcomeTooLarge)
		h.log.Warn("event refused by the stream, answering 413", "type", ev.Type, "key", clipLog(in.key()), "bytes", len(in.data), "err", err)
		httpjson.Error(w, http.StatusRequestEntityTooLarge, "event too large to store")
		return true
	}
	span.SetStatus(codes.Error, "publish failed")
	h.metrics.received(ev.Type, outcomeUnavailable)
	h.log.Warn("publish failed, answering 503", "type", ev.Type, "key", clipLog(in.key()), "err", err)
	w.Header().Set("Retry-After", retryAfter)
	httpjson.Error(w, http.StatusServiceUnavailable, "event store unavailable, retry later")
	return true
}

// stored counts a stored event.
func (h *Handler) stored(t event.Type, ack *jetstream.PubAck) {
	outcome := outcomeStored
	if ack.Duplicate {
		outcome = outcomeDuplicate
	}
	h.metrics.received(t, outcome)
}

// jsHeaderTooLarge is JetStream's "header size exceeds maximum allowed"
// (JSStreamHeaderExceedsMaximumErr), which nats.go names no constant for.
const jsHeaderTooLarge jetstream.ErrorCode = 10097

// tooLargeToStore reports whether a publish failed because of the message
// itself (its size, its headers' size): retrying cannot store it.
func tooLargeToStore(err error) bool {
	if errors.Is(err, nats.ErrMaxPayload) {
		return true
	}
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode == jetstream.JSErrCodeStreamMessageExceedsMaximum || apiErr.ErrorCode == jsHeaderTooLarge
	}
	return false
}

// clipLog shortens what a sender chose (a key derived from its id) for a log
// line: never a whole huge value.
func clipLog(s string) string {
	const most = 128
	if len(s) <= most {
		return s
	}
	return s[:most] + "…(" + strconv.Itoa(len(s)) + " bytes)"
}

// Probe answers the HEAD some providers send before enabling a webhook URL.
func (h *Handler) Probe(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusOK)
}

// jsonType is a Content-Type header's value. Shared by every response:
// http.Header.Add appends to a full slice, so it never writes into it.
var jsonType = []string{"application/json"}

// answerReceived answers 200 {"received":true}: the event is stored.
func answerReceived(w http.ResponseWriter) {
	w.Header()["Content-Type"] = jsonType
	w.WriteHeader(http.StatusOK)
	_, _ = w.Write(received)
}

func (h *Handler) refuseCheck(w http.ResponseWriter, r *http.Request, ip netip.Addr, err error) {
	f, ok := verify.AsFailure(err)
	if !ok {
		f = &verify.Failure{Status: http.StatusUnauthorized, Reason: "unverified"}
	}
	msg := "unauthorized"
	if f.Status == http.StatusForbidden {
		msg = "forbidden"
	}
	h.refuse(w, r, ip, f.Status, string(f.Reason), msg)
}

// refuse answers an error, counts it by reason and logs one line. The path is
// logged by its route pattern, so a wrong token never reaches the logs.
func (h *Handler) refuse(w http.ResponseWriter, r *http.Request, ip netip.Addr, status int, reason, msg string) {
	if !ip.IsValid() {
		ip = h.clientIP.Of(r)
	}
	trace.SpanFromContext(r.Context()).SetAttributes(attribute.String("esimflow.refused", reason))
	h.metrics.received(event.Unknown, reason)
	h.log.Warn("webhook refused", "status", status, "reason", reason, "ip", ip.String(),
		"route", r.Pattern, "content_type", r.Header.Get("Content-Type"), "bytes", r.ContentLength)
	httpjson.Error(w, status, msg)
}

// reject keeps an invalid body in the bounded ESIM_REJECTED stream for
// debugging. It is best effort: the answer is 400 either way.
func (h *Handler) reject(ctx context.Context, body []byte, reason error, at time.Time) {
	msg := nats.NewMsg(h.names.RejectedSubject())
	msg.Data = body
	msg.Header.Set(stream.HeaderError, reason.Error())
	msg.Header.Set(stream.HeaderReceivedAt, at.Format(time.RFC3339Nano))
	ctx, cancel := context.WithTimeout(ctx, h.timeout)
	defer cancel()
	if _, err := h.pub.PublishMsg(ctx, msg); err != nil {
		h.log.Warn("could not keep rejected body", "err", err)
	}
}
