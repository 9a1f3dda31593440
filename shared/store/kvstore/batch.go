package kvstore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/esimflow/esimflow/shared/store"
)

var _ store.BatchState = (*Store)(nil)

// ReadState reads what snap lacks key by key: NATS KV has no pipeline, and
// the embedded server this store serves is in the same process anyway. The
// version is the entry's revision.
func (s *Store) ReadState(ctx context.Context, snap *store.Snapshot, orderNos, iccids []string) error {
	for _, no := range orderNos {
		if _, ok := snap.Orders[no]; ok {
			continue
		}
		v := &store.Versioned[store.Order]{Value: store.Order{OrderNo: no}}
		rev, err := get(ctx, s.state, orderKey(no), &v.Value)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("order %s: %w", no, err)
		}
		v.Version = version(rev)
		snap.Orders[no] = v
	}
	for _, iccid := range iccids {
		if _, ok := snap.Profiles[iccid]; ok {
			continue
		}
		v := &store.Versioned[store.Profile]{Value: store.Profile{ICCID: iccid}}
		rev, err := get(ctx, s.state, profileKey(iccid), &v.Value)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("profile %s: %w", iccid, err)
		}
		v.Version = version(rev)
		snap.Profiles[iccid] = v
	}
	return nil
}

// SeenAndReadState checks the keys, then reads the state: NATS KV has no
// pipelines, and concurrent gets would cost more CPU than the round trips
// they overlap on the in-process server this store serves.
func (s *Store) SeenAndReadState(ctx context.Context, keys []string, snap *store.Snapshot, orderNos, iccids []string) ([]bool, error) {
	seen, err := s.SeenMany(ctx, keys)
	if err != nil {
		return nil, err
	}
	if err := s.ReadState(ctx, snap, orderNos, iccids); err != nil {
		return nil, err
	}
	return seen, nil
}

// WriteState writes each listed value if its revision is still the one
// read: all of them in one group commit, or, when it is not taken (one of
// them changed, or an older server), one by one, which tells the lost ones.
func (s *Store) WriteState(ctx context.Context, snap *store.Snapshot, orderNos, iccids []string) (store.Lost, error) {
	ws := make([]write, 0, len(orderNos)+len(iccids))
	vers := make([]*[]byte, 0, cap(ws))
	add := func(kind, id, key string, v any, ver *[]byte) error {
		b, err := store.EncodeState(v)
		if err != nil {
			return fmt.Errorf("write %s %s: encode: %w", kind, id, err)
		}
		var rev uint64
		if len(*ver) == 8 {
			rev = binary.BigEndian.Uint64(*ver)
		}
		ws, vers = append(ws, write{key: key, value: b, rev: rev}), append(vers, ver)
		return nil
	}
	for _, no := range orderNos {
		v, ok := snap.Orders[no]
		if !ok {
			return store.Lost{}, fmt.Errorf("write order %s: not in the snapshot", no)
		}
		if err := add("order", no, orderKey(no), v.Value, &v.Version); err != nil {
			return store.Lost{}, err
		}
	}
	for _, iccid := range iccids {
		v, ok := snap.Profiles[iccid]
		if !ok {
			return store.Lost{}, fmt.Errorf("write profile %s: not in the snapshot", iccid)
		}
		if err := add("profile", iccid, profileKey(iccid), v.Value, &v.Version); err != nil {
			return store.Lost{}, err
		}
	}
	if revs, err := s.commit(ctx, s.state, ws); err == nil {
		for i, rev := range revs {
			*vers[i] = version(rev)
		}
		return store.Lost{}, nil
	}
	return s.writeStateOneByOne(ctx, snap, orderNos, iccids)
}

// writeStateOneByOne is WriteState without a group commit.
func (s *Store) writeStateOneByOne(ctx context.Context, snap *store.Snapshot, orderNos, iccids []string) (store.Lost, error) {
	var lost store.Lost
	for _, no := range orderNos {
		v, ok := snap.Orders[no]
		if !ok {
			return lost, fmt.Errorf("write order %s: not in the snapshot", no)
		}
		won, err := s.put(ctx, orderKey(no), v.Value, &v.Version)
		if err != nil {
			return lost, fmt.Errorf("write order %s: %w", no, err)
		}
		if !won {
			lost.Orders = append(lost.Orders, no)
		}
	}
	for _, iccid := range iccids {
		v, ok := snap.Profiles[iccid]
		if !ok {
			return lost, fmt.Errorf("write profile %s: not in the snapshot", iccid)
		}
		won, err := s.put(ctx, profileKey(iccid), v.Value, &v.Version)
		if err != nil {
			return lost, fmt.Errorf("write profile %s: %w", iccid, err)
		}
		if !won {
			lost.Profiles = append(lost.Profiles, iccid)
		}
	}
	return lost, nil
}

// put is one compare-and-set; it reports false when another writer won, and
// moves *ver to the new revision when it wrote.
func (s *Store) put(ctx context.Context, key string, v any, ver *[]byte) (bool, error) {
	b, err := store.EncodeState(v)
	if err != nil {
		return false, fmt.Errorf("encode: %w", err)
	}
	var rev uint64
	if len(*ver) == 8 {
		rev = binary.BigEndian.Uint64(*ver)
	}
	rev, err = s.stateW.write(ctx, write{key: key, value: b, rev: rev})
	if lostRace(err) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	*ver = version(rev)
	return true, nil
}

// version encodes a revision; 0 (never written) is nil.
func version(rev uint64) []byte {
	if rev == 0 {
		return nil
	}
	return binary.BigEndian.AppendUint64(nil, rev)
}
