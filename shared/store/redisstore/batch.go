package redisstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/esimflow/esimflow/shared/store"
	"github.com/redis/go-redis/v9"
)

var _ store.BatchState = (*Store)(nil)

// casScript writes KEYS[1] only if it still holds ARGV[1] ("" for absent).
// Comparing the whole value needs no version field, so the stored layout stays
// what Order and Profile read; an equal value written in between (A→B→A) is
// harmless, since a merge is a pure function of the value it starts from.
// Run with EVAL, not EVALSHA: the server's script cache is lost on restart and
// failover, and a pipeline cannot fall back from NOSCRIPT command by command.
var casScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[1])
if cur == false then cur = '' end
if cur ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[2])
return 1`)

// ReadState reads every order and profile snap lacks in one pipeline.
func (s *Store) ReadState(ctx context.Context, snap *store.Snapshot, orderNos, iccids []string) error {
	_, err := s.SeenAndReadState(ctx, nil, snap, orderNos, iccids)
	return err
}

// SeenAndReadState checks the keys and reads every order and profile snap
// lacks in one round trip.
func (s *Store) SeenAndReadState(ctx context.Context, keys []string, snap *store.Snapshot, orderNos, iccids []string) ([]bool, error) {
	type read struct{ order, iccid string } // one of the two
	var reads []read
	all := make([]string, 0, len(keys)+len(orderNos)+len(iccids))
	for _, k := range keys {
		all = append(all, s.key("s", k))
	}
	for _, no := range orderNos {
		if _, ok := snap.Orders[no]; !ok {
			reads, all = append(reads, read{order: no}), append(all, s.key("o", no))
		}
	}
	for _, iccid := range iccids {
		if _, ok := snap.Profiles[iccid]; !ok {
			reads, all = append(reads, read{iccid: iccid}), append(all, s.key("p", iccid))
		}
	}
	vals, err := s.getMany(ctx, all)
	if err != nil {
		return nil, fmt.Errorf("seen %d keys and read %d orders and profiles: %w", len(keys), len(reads), err)
	}
	out := make([]bool, len(keys))
	for i := range keys {
		out[i] = vals[i] != nil
	}
	for i, r := range reads {
		b := vals[len(keys)+i]
		if r.order != "" {
			v := &store.Versioned[store.Order]{Value: store.Order{OrderNo: r.order}, Version: b}
			if err := decodeRead(b, &v.Value); err != nil {
				return nil, fmt.Errorf("order %s: %w", r.order, err)
			}
			snap.Orders[r.order] = v
			continue
		}
		v := &store.Versioned[store.Profile]{Value: store.Profile{ICCID: r.iccid}, Version: b}
		if err := decodeRead(b, &v.Value); err != nil {
			return nil, fmt.Errorf("profile %s: %w", r.iccid, err)
		}
		snap.Profiles[r.iccid] = v
	}
	return out, nil
}

// getMany reads the values of string keys, nil for an absent one. On one
// server that is one MGET: a batch's seen flags, orders and profiles cost
// Redis one command, not three per event. A Cluster's MGET cannot span hash
// slots, and every key here has its own, so there each is a GET in one
// pipeline, which the client splits by slot.
func (s *Store) getMany(ctx context.Context, keys []string) ([][]byte, error) {
	out := make([][]byte, len(keys))
	if len(keys) == 0 {
		return out, nil
	}
	if _, single := s.rdb.(*redis.Client); single {
		vals, err := s.rdb.MGet(ctx, keys...).Result()
		if err != nil {
			return nil, err
		}
		for i, v := range vals {
			switch v := v.(type) {
			case nil:
			case string:
				out[i] = []byte(v)
			default:
				return nil, fmt.Errorf("%s: unexpected %T", keys[i], v)
			}
		}
		return out, nil
	}
	cmds := make([]*redis.StringCmd, len(keys))
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, k := range keys {
			cmds[i] = p.Get(ctx, k)
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return nil, err
	}
	for i, c := range cmds {
		b, err := c.Bytes()
		switch {
		case errors.Is(err, redis.Nil):
		case err != nil:
			return nil, fmt.Errorf("%s: %w", keys[i], err)
		default:
			out[i] = b
		}
	}
	return out, nil
}

func decodeRead(b []byte, v any) error {
	if b == nil {
		return nil
	}
	return store.DecodeState(b, v)
}

// write is one value of WriteState's pipeline. It knows its key, what it
// compares with, and where its version lives, so the pipeline and the results
// need not tell orders from profiles; lost says which list a lost write goes
// to.
type write struct {
	key     string
	data    []byte
	version *[]byte
	lost    *[]string
	id      string
	cmd     *redis.Cmd     // the script's compare-and-set, or
	created *redis.BoolCmd // SET NX of a value read absent
}

// WriteState compare-and-sets every listed value in one pipeline.
func (s *Store) WriteState(ctx context.Context, snap *store.Snapshot, orderNos, iccids []string) (store.Lost, error) {
	var lost store.Lost
	writes := make([]write, 0, len(orderNos)+len(iccids))
	for _, no := range orderNos {
		v, ok := snap.Orders[no]
		if !ok {
			return store.Lost{}, fmt.Errorf("write order %s: not in the snapshot", no)
		}
		b, err := store.EncodeState(v.Value)
		if err != nil {
			return store.Lost{}, fmt.Errorf("encode order %s: %w", no, err)
		}
		writes = append(writes, write{key: s.key("o", no), data: b, version: &v.Version, lost: &lost.Orders, id: no})
	}
	for _, iccid := range iccids {
		v, ok := snap.Profiles[iccid]
		if !ok {
			return store.Lost{}, fmt.Errorf("write profile %s: not in the snapshot", iccid)
		}
		b, err := store.EncodeState(v.Value)
		if err != nil {
			return store.Lost{}, fmt.Errorf("encode profile %s: %w", iccid, err)
		}
		writes = append(writes, write{key: s.key("p", iccid), data: b, version: &v.Version, lost: &lost.Profiles, id: iccid})
	}
	if len(writes) == 0 {
		return lost, nil
	}
	_, err := s.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i := range writes {
			w := &writes[i]
			if len(*w.version) == 0 {
				// A value read absent is created, not replaced: SET NX is
				// the same compare-and-set without the script, and the
				// first event of every order and profile takes this path.
				w.created = p.SetNX(ctx, w.key, w.data, 0)
				continue
			}
			w.cmd = casScript.Eval(ctx, p, []string{w.key}, *w.version, w.data)
		}
		return nil
	})
	if err != nil {
		return store.Lost{}, fmt.Errorf("write %d orders and profiles: %w", len(writes), err)
	}
	for _, w := range writes {
		if w.won() {
			*w.version = w.data
		} else {
			*w.lost = append(*w.lost, w.id)
		}
	}
	return lost, nil
}

// won reports whether a write's compare-and-set took effect.
func (w *write) won() bool {
	if w.created != nil {
		return w.created.Val()
	}
	return w.cmd.Val() == int64(1)
}
