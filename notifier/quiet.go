package notifier

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"
	_ "time/tzdata" // contacts name any IANA zone; images may have no zoneinfo

	"github.com/esimflow/esimflow/shared/config"
	"github.com/esimflow/esimflow/shared/consume"
	"github.com/esimflow/esimflow/shared/intent"
	"github.com/esimflow/esimflow/shared/store"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// quietHours hold non-critical messages while it is night on the
// customer's clock (docs/design.md, "Quiet hours and preferences").
type quietHours struct {
	window   config.ClockRange // From == To: off
	zone     *time.Location    // for contacts without a time zone
	critical map[string]bool   // template kinds that go at once, and that no opt-out stops
	// recheck bounds one hold's wait: a held message looks again at least
	// this often, so a contact's new time zone or a stepped clock is
	// noticed.
	recheck time.Duration
	// publish re-publishes a held message whose deliveries run low.
	publish Publisher
	zones   sync.Map // name → *time.Location
}

// holdMinDeliveries is the deliveries a held message must have left to wait
// on its own delivery budget: one for the release, and two more for
// transient failures after it. With fewer, it is re-published with a fresh
// budget (park).
const holdMinDeliveries = 3

func newQuietHours(q config.QuietHours, recheck time.Duration, publish Publisher) (*quietHours, error) {
	zone, err := time.LoadLocation(q.TimeZone)
	if q.TimeZone == "" {
		zone, err = time.UTC, nil
	}
	if err != nil {
		return nil, fmt.Errorf("quiet hours time zone %q: %w", q.TimeZone, err)
	}
	crit := map[string]bool{}
	for _, k := range q.Critical {
		crit[k] = true
	}
	if recheck <= 0 {
		recheck = time.Hour
	}
	return &quietHours{window: q.Window, zone: zone, critical: crit, recheck: recheck, publish: publish}, nil
}

// releaseAt returns when a message may go out on the clock of zone, now
// zero when it may go now.
func (q *quietHours) releaseAt(now time.Time, zone *time.Location) time.Time {
	from, to := q.window.From, q.window.To
	if from == to {
		return time.Time{}
	}
	local := now.In(zone)
	minute := local.Hour()*60 + local.Minute()
	quiet := from <= minute && minute < to
	if from > to { // across midnight
		quiet = minute >= from || minute < to
	}
	if !quiet {
		return time.Time{}
	}
	y, m, d := local.Date()
	release := time.Date(y, m, d, to/60, to%60, 0, 0, zone)
	if !release.After(local) {
		release = time.Date(y, m, d+1, to/60, to%60, 0, 0, zone)
	}
	return release
}

// location is the contact's time zone, else the default one.
func (q *quietHours) location(c *store.Contact) *time.Location {
	if c == nil || c.TimeZone == "" {
		return q.zone
	}
	if l, ok := q.zones.Load(c.TimeZone); ok {
		return l.(*time.Location)
	}
	l, err := time.LoadLocation(c.TimeZone)
	if err != nil {
		// The API refuses unknown zones; one stored before (or by another
		// version) falls back to the reseller's clock rather than block.
		return q.zone
	}
	q.zones.Store(c.TimeZone, l)
	return l
}

// preferences applies the customer's wishes and the quiet hours to a
// claimed intent whose contact is known: an opted-out kind is suppressed, a
// non-critical message in quiet hours is held until they end. Critical kinds
// go at once, whatever the opt-outs.
func (h *Handler) preferences(ctx context.Context, in intent.Intent, c *store.Contact, m *consume.Msg) (consume.Outcome, bool) {
	kind, err := templateKind(in)
	if err != nil || h.quiet.critical[string(kind)] {
		return consume.Outcome{}, true // render reports the unknown kind
	}
	if c != nil && slices.Contains(c.OptOut, string(kind)) {
		entry := store.Notification{ID: in.ID, Kind: string(in.Kind), ICCID: in.ICCID, Threshold: in.Threshold, TransactionID: in.TransactionID,
			Status: string(store.ClaimSuppressed), Error: "the customer opted out of " + string(kind)}
		return h.finish(ctx, in, &entry, store.ClaimSuppressed), false
	}
	now := h.now()
	release := h.quiet.releaseAt(now, h.quiet.location(c))
	if release.IsZero() {
		return consume.Outcome{}, true
	}
	why := fmt.Sprintf("quiet hours on the customer's clock (%s) until %s", h.quiet.location(c), release.Format("15:04 Mon"))
	h.logHeld(ctx, in, why, release)
	wait := min(release.Sub(now), h.quiet.recheck)
	if left := h.maxDeliver - int(m.Meta.NumDelivered); left < holdMinDeliveries {
		return h.park(ctx, in, m, release, why)
	}
	return h.waitReleasing(ctx, in, why, wait), false
}

// park re-publishes a held message whose deliveries run low, with a fresh
// delivery budget, and acks this copy. Published first: a crash in between
// leaves two copies of the intent, which its claim sends once. The copy's
// Nats-Msg-Id names the hold's release and this delivery, so a retry of the
// same publish is dropped as a duplicate.
func (h *Handler) park(ctx context.Context, in intent.Intent, m *consume.Msg, release time.Time, why string) (consume.Outcome, bool) {
	if err := h.release(ctx, in, nil); err != nil {
		return consume.Fail(err), false
	}
	out := nats.NewMsg(m.Subject())
	out.Data = m.Data()
	for k, v := range m.Headers() {
		out.Header[k] = v
	}
	out.Header.Set(jetstream.MsgIDHeader, fmt.Sprintf("%s/held/%d/%d", in.ID, release.Unix(), m.Seq()))
	if _, err := h.quiet.publish.PublishMsg(ctx, out); err != nil {
		return consume.Fail(fmt.Errorf("re-publish held %s: %w", in.ID, err)), false
	}
	h.log.Info("held message re-published with a fresh delivery budget", "id", in.ID, "release", release, "why", why)
	return consume.Ack("held_republished"), false
}

// logHeld logs that the intent is held, once per hold: not when its latest
// entry already says held until the same time.
func (h *Handler) logHeld(ctx context.Context, in intent.Intent, why string, release time.Time) {
	log, err := h.store.Notifications(ctx, in.ICCID)
	if err != nil {
		h.log.Error("notification log read failed", "id", in.ID, "err", err)
		return
	}
	for i := len(log) - 1; i >= 0; i-- {
		if log[i].ID == in.ID {
			if log[i].Status == store.NotificationHeld && log[i].ReleaseAt.Equal(release) {
				return
			}
			break
		}
	}
	h.logEntry(ctx, store.Notification{ID: in.ID, Kind: string(in.Kind), ICCID: in.ICCID, Threshold: in.Threshold, TransactionID: in.TransactionID,
		Status: store.NotificationHeld, Error: why, SentAt: time.Now().UTC(), ReleaseAt: release.UTC()})
}

// unlessHeldForQuiet is busy, the lower intent in's turn waits for, or ""
// when that one is held for quiet hours and so not in flight.
func (h *Handler) unlessHeldForQuiet(ctx context.Context, in intent.Intent, busy string) (string, error) {
	held, err := h.heldForQuiet(ctx, in.ICCID, busy)
	if err != nil || held {
		return "", err
	}
	return busy, nil
}

// heldForQuiet reports whether intent id's latest log entry says it is held
// for quiet hours, with its release still ahead: a lower warning held so
// does not keep a higher, critical one waiting (it is superseded when it is
// released). Near its release it may be under way, and counts as in flight.
func (h *Handler) heldForQuiet(ctx context.Context, iccid, id string) (bool, error) {
	log, err := h.store.Notifications(ctx, iccid)
	if err != nil {
		return false, fmt.Errorf("notifications %s: %w", iccid, err)
	}
	for i := len(log) - 1; i >= 0; i-- {
		if log[i].ID == id {
			return log[i].Status == store.NotificationHeld && log[i].ReleaseAt.After(h.now().Add(h.lease)), nil
		}
	}
	return false, nil
}
