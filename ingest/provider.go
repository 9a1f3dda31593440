package ingest

import (
	"errors"
	"net/http"
	"time"

	"github.com/esimflow/esimflow/ingest/verify"
	"github.com/esimflow/esimflow/shared/event"
	"github.com/esimflow/esimflow/shared/httpjson"
	providers "github.com/esimflow/esimflow/shared/provider"
)

// defaultAdapterVersion is the default provider's adapter version, stored
// with its events.
var defaultAdapterVersion = providers.ESIMAccess().Version()

// Provider stores what /webhooks/{provider} receives: verified by the
// provider's own scheme, read by its adapter, one stored message per
// canonical event the body holds (each with the raw body and headers
// naming the provider, the adapter's version and the event's index), and
// 200 once JetStream has them all. The default provider's name is its
// /webhooks/esim endpoint under another path.
func (h *Handler) Provider(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("provider")
	if name == providers.Default {
		h.webhook(w, r, name)
		return
	}
	a, ok := h.adapters[name]
	if !ok {
		httpjson.Error(w, http.StatusNotFound, "no such provider")
		return
	}
	now := time.Now().UTC()
	r, span := h.startSpan(r)
	defer span.End()
	ctx := r.Context()
	ip := h.senderIP(r)
	buf, ok := h.admitSigned(w, r, ip, a.verify, nil)
	if !ok {
		return
	}
	defer h.bodies.put(buf)
	body := buf.b
	// JSON only: a signature covers the raw body, which is what is stored.
	data, err := normalize(r, body, false)
	if errors.Is(err, errUnsupportedType) {
		h.refuse(w, r, ip, http.StatusUnsupportedMediaType, "unsupported_type", err.Error())
		return
	}
	if err != nil {
		h.reject(ctx, body, err, now)
		h.refuse(w, r, ip, http.StatusBadRequest, outcomeInvalid, err.Error())
		return
	}
	if hs, ok := a.Adapter.(providers.Handshaker); ok {
		done, err := hs.Handshake(ctx, data)
		if err != nil {
			h.log.Warn("provider handshake failed, answering 502", "provider", name, "err", err)
			h.metrics.received(event.Unknown, outcomeHandshake)
			httpjson.Error(w, http.StatusBadGateway, "handshake failed")
			return
		}
		if done {
			h.log.Info("provider handshake answered", "provider", name)
			h.metrics.received(event.Unknown, outcomeHealth)
			answerReceived(w)
			return
		}
	}
	evs := a.Decode(event.Decoder{}, data)
	if len(evs) == 1 && errors.Is(evs[0].Err, event.ErrInvalidJSON) {
		h.reject(ctx, body, evs[0].Err, now)
		h.refuse(w, r, ip, http.StatusBadRequest, outcomeInvalid, "body is not valid JSON")
		return
	}
	// Every event is stored before the answer: a failure answers 503 and
	// the provider's retry stores them again, the stored ones deduplicated
	// by their keys.
	for i, d := range evs {
		in := incoming{data: data, ev: d.Event, decodeErr: d.Err, provider: name, adapter: a.Version(), index: i}
		ack, err := h.publish(ctx, span, in, now)
		if h.failed(w, span, in, err) {
			return
		}
		h.stored(d.Event.Type, ack)
	}
	h.metrics.arrivals.add(name, now)
	answerReceived(w)
}

// ProviderProbe answers a provider's HEAD: 200 for a provider that probes
// its URL before enabling it (Airalo; a mapping file's probe: true), 405
// for the other providers, 404 for a name ingest does not know.
func (h *Handler) ProviderProbe(w http.ResponseWriter, r *http.Request) {
	a, ok := h.adapters[r.PathValue("provider")]
	if !ok {
		w.WriteHeader(http.StatusNotFound)
		return
	}
	if p, ok := a.Adapter.(providers.Prober); !ok || !p.Probes() {
		w.Header().Set("Allow", http.MethodPost)
		w.WriteHeader(http.StatusMethodNotAllowed)
		return
	}
	h.Probe(w, r)
}

// verify checks a request with the provider's verifier, answering as
// ingest's own checks do (401 with the reason).
func (a adapter) verify(vr verify.Request) error {
	if a.verifier == nil {
		return nil
	}
	err := a.verifier.Verify(vr.HTTP, vr.Body)
	if err == nil {
		return nil
	}
	var ve *providers.VerifyError
	if errors.As(err, &ve) {
		return &verify.Failure{Status: http.StatusUnauthorized, Reason: verify.Reason(ve.Reason)}
	}
	return &verify.Failure{Status: http.StatusUnauthorized, Reason: verify.ReasonSignature}
}
