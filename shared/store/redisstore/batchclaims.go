package redisstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/esimflow/esimflow/shared/store"
	"github.com/redis/go-redis/v9"
)

var (
	_ store.BatchClaims          = (*Store)(nil)
	_ store.BatchNotificationLog = (*Store)(nil)
	_ store.BatchContacts        = (*Store)(nil)
	_ store.BatchParking         = (*Store)(nil)
)

// The batch methods run the single-id commands and scripts in one pipeline:
// the same rules, one round trip. Scripts go with EVAL, as casScript's do.

// ClaimMany runs claimScript for each id in one pipeline.
func (s *Store) ClaimMany(ctx context.Context, ids []string, owner string, lease time.Duration) ([]store.Claim, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	now := time.Now()
	cmds := make([]*redis.Cmd, len(ids))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = claimScript.Eval(ctx, p, []string{s.key("c", id)}, owner, now.UnixMilli(), now.Add(lease).UnixMilli())
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("claim %d ids: %w", len(ids), err)
	}
	out := make([]store.Claim, len(ids))
	for i, cmd := range cmds {
		res, err := cmd.Slice()
		if err == nil {
			out[i], err = parseClaim(res)
		}
		if err != nil {
			return nil, fmt.Errorf("claim %s: %w", ids[i], err)
		}
	}
	return out, nil
}

// FinishMany runs finishScript for each id in one pipeline.
func (s *Store) FinishMany(ctx context.Context, ids []string, owner string, states []store.ClaimState) ([]error, error) {
	if len(ids) != len(states) {
		return nil, fmt.Errorf("finish %d ids with %d states", len(ids), len(states))
	}
	errs := make([]error, len(ids))
	cmds := make([]*redis.Cmd, len(ids))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			if !states[i].Finishes() {
				errs[i] = fmt.Errorf("finish %s: %q is neither a final state nor dead_lettered", id, states[i])
				continue
			}
			cmds[i] = finishScript.Eval(ctx, p, []string{s.key("c", id)}, owner, string(states[i]))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("finish %d claims: %w", len(ids), err)
	}
	for i, cmd := range cmds {
		if cmd == nil {
			continue
		}
		if n, err := cmd.Int(); err != nil {
			return nil, fmt.Errorf("finish claim %s: %w", ids[i], err)
		} else if n != 1 {
			errs[i] = fmt.Errorf("finish claim %s: %w", ids[i], store.ErrNotOwner)
		}
	}
	return errs, nil
}

// ClaimStates reads each claim's state in one pipeline.
func (s *Store) ClaimStates(ctx context.Context, ids []string) ([]store.ClaimState, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	cmds := make([]*redis.StringCmd, len(ids))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, id := range ids {
			cmds[i] = p.HGet(ctx, s.key("c", id), "state")
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("claim states of %d ids: %w", len(ids), err)
	}
	out := make([]store.ClaimState, len(ids))
	for i, cmd := range cmds {
		st, err := cmd.Result()
		switch {
		case errors.Is(err, redis.Nil):
			out[i] = store.ClaimNone
		case err != nil:
			return nil, fmt.Errorf("claim state %s: %w", ids[i], err)
		default:
			out[i] = store.ClaimState(st)
		}
	}
	return out, nil
}

// AppendNotifications appends every entry in one pipeline, then updates the
// open intents in a second one: after the logs, as AppendNotification does.
func (s *Store) AppendNotifications(ctx context.Context, ns []store.Notification) error {
	if len(ns) == 0 {
		return nil
	}
	bodies := make([][]byte, len(ns))
	for i, n := range ns {
		b, err := json.Marshal(n)
		if err != nil {
			return fmt.Errorf("encode notification %s: %w", n.ID, err)
		}
		bodies[i] = b
	}
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, n := range ns {
			appendScript.Eval(ctx, p, []string{s.key("l", n.ICCID)}, bodies[i], store.NotificationLogLimit)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("append %d notifications: %w", len(ns), err)
	}
	_, err = s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, n := range ns {
			open := ""
			if store.OpenStatus(n.Status) {
				open = string(bodies[i])
			}
			openScript.Eval(ctx, p, []string{s.openKey(), s.openKey() + ":t"}, n.ID, open, n.SentAt.UnixMilli(), store.OpenNotificationLimit)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("open notifications of %d entries: %w", len(ns), err)
	}
	return nil
}

// appendScript is AppendNotification's RPUSH and LTRIM as one command, so a
// pipeline keeps each append whole without a transaction per entry.
// KEYS[1] the log; ARGV entry, limit.
var appendScript = redis.NewScript(`
redis.call('RPUSH', KEYS[1], ARGV[1])
redis.call('LTRIM', KEYS[1], -tonumber(ARGV[2]), -1)
return 1
`)

// ContactMany reads every contact in one pipeline.
func (s *Store) ContactMany(ctx context.Context, transactionIDs []string) (map[string]store.Contact, error) {
	out := make(map[string]store.Contact, len(transactionIDs))
	if len(transactionIDs) == 0 {
		return out, nil
	}
	cmds := make([]*redis.StringCmd, len(transactionIDs))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, tx := range transactionIDs {
			cmds[i] = p.Get(ctx, s.key("k", tx))
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("read %d contacts: %w", len(transactionIDs), err)
	}
	for i, cmd := range cmds {
		b, err := cmd.Bytes()
		if errors.Is(err, redis.Nil) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("contact %s: %w", transactionIDs[i], err)
		}
		var c store.Contact
		if err := json.Unmarshal(b, &c); err != nil {
			return nil, fmt.Errorf("decode contact %s: %w", transactionIDs[i], err)
		}
		out[transactionIDs[i]] = c
	}
	return out, nil
}

// ParkedMany reads every key's parked bodies in one pipeline.
func (s *Store) ParkedMany(ctx context.Context, keys []string) ([]map[string][]byte, error) {
	if len(keys) == 0 {
		return nil, nil
	}
	cmds := make([]*redis.MapStringStringCmd, len(keys))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, key := range keys {
			cmds[i] = p.HGetAll(ctx, s.key("p", key))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("parked under %d keys: %w", len(keys), err)
	}
	out := make([]map[string][]byte, len(keys))
	for i, cmd := range cmds {
		out[i] = make(map[string][]byte, len(cmd.Val()))
		for id, body := range cmd.Val() {
			out[i][id] = []byte(body)
		}
	}
	return out, nil
}

// ContactManyByICCID follows each ICCID's index entry to its contact, in two
// round trips for the whole batch: the index entries, then the contacts
// they name, kept where they still list the ICCID (as ContactByICCID).
func (s *Store) ContactManyByICCID(ctx context.Context, iccids []string) (map[string]store.Contact, error) {
	out := make(map[string]store.Contact, len(iccids))
	if len(iccids) == 0 {
		return out, nil
	}
	cmds := make([]*redis.StringCmd, len(iccids))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, iccid := range iccids {
			cmds[i] = p.Get(ctx, s.key("ki", iccid))
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("read %d contact index entries: %w", len(iccids), err)
	}
	txOf := make(map[string]string, len(iccids))
	var txs []string
	for i, cmd := range cmds {
		tx, err := cmd.Result()
		switch {
		case errors.Is(err, redis.Nil):
			continue
		case err != nil:
			return nil, fmt.Errorf("contact index entry of iccid %s: %w", iccids[i], err)
		}
		txOf[iccids[i]] = tx
		txs = append(txs, tx)
	}
	contacts, err := s.ContactMany(ctx, txs)
	if err != nil {
		return nil, err
	}
	for iccid, tx := range txOf {
		if c, ok := contacts[tx]; ok && slices.Contains(c.ICCIDs, iccid) {
			out[iccid] = c
		}
	}
	return out, nil
}
