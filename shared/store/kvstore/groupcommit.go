package kvstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/esimflow/esimflow/shared/store"
	"github.com/esimflow/esimflow/shared/stream"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Group commit (docs/adr/0017): a nats-server of 2.12 or newer stores an
// atomic batch of messages to a single-replica file stream with one fsync,
// where it fsyncs every other message on its own (SyncAlways, the embedded
// default). The batch methods therefore write a batch's keys of one bucket
// as one atomic batch of compare-and-sets, and fall back to writing them one
// by one when the batch is not taken: an older server (Debian's 2.9.10), a
// key another writer changed since it was read (the batch is all or
// nothing), the server's limits on batches in flight. The fallback is the
// same code the single-key methods run, so a batch that was refused, or
// whose outcome is unknown, ends as if it had never been tried.

// maxBatch bounds the messages of one atomic batch.
const maxBatch = stream.MaxAtomicBatch

// write is one key of a group commit: its new value, and the revision the
// key must still be at (0: absent) unless blind.
type write struct {
	key   string
	value []byte
	rev   uint64
	blind bool // a plain put, as MarkSeen's
}

// allowAtomic turns on atomic batch publishing on a bucket's stream, which
// KeyValueConfig cannot say, and reports whether the server kept it.
func allowAtomic(ctx context.Context, js jetstream.JetStream, bucket string) (bool, error) {
	name := "KV_" + bucket
	s, err := js.Stream(ctx, name)
	if err != nil {
		return false, fmt.Errorf("stream %s: %w", name, err)
	}
	cfg := s.CachedInfo().Config
	if cfg.AllowAtomicPublish {
		return true, nil
	}
	cfg.AllowAtomicPublish = true
	info, err := js.UpdateStream(ctx, cfg)
	if err != nil {
		return false, fmt.Errorf("allow atomic publish on %s: %w", name, err)
	}
	return info.CachedInfo().Config.AllowAtomicPublish, nil
}

// errNotCommitted says a group commit was not taken; the caller writes its
// keys one by one.
var errNotCommitted = errors.New("group commit not taken")

// commit writes ws to the bucket kv as atomic batches of at most maxBatch
// and returns each key's new revision. Any failure is errNotCommitted,
// wrapping the reason: nothing of a refused batch was written, and the
// outcome of a batch whose answer was lost is unknown (its compare-and-sets
// make a second write of it fail, which the caller's fallback reads as a
// lost race and redoes). A batch of one key is not worth the batch's
// overhead on the server, so it is refused at once.
func (s *Store) commit(ctx context.Context, kv jetstream.KeyValue, ws []write) ([]uint64, error) {
	if !s.atomic || len(ws) < 2 {
		return nil, errNotCommitted
	}
	revs := make([]uint64, 0, len(ws))
	for len(ws) > 0 {
		n := min(len(ws), maxBatch)
		r, err := s.commitBatch(ctx, kv.Bucket(), ws[:n])
		if err != nil {
			// Keys of earlier batches are written; writing them again
			// fails their compare-and-set, which the caller's fallback
			// takes as lost and redoes (or, blind, writes again).
			return nil, fmt.Errorf("%w: %w", errNotCommitted, err)
		}
		revs, ws = append(revs, r...), ws[n:]
	}
	return revs, nil
}

// commitBatch publishes ws as one atomic batch and waits for its commit,
// and returns each key's revision: a committed batch is stored under
// consecutive sequences.
func (s *Store) commitBatch(ctx context.Context, bucket string, ws []write) ([]uint64, error) {
	msgs := make([]*nats.Msg, len(ws))
	for i, w := range ws {
		m := nats.NewMsg("$KV." + bucket + "." + w.key)
		m.Data = w.value
		if !w.blind {
			m.Header.Set(jetstream.ExpectedLastSubjSeqHeader, strconv.FormatUint(w.rev, 10))
		}
		msgs[i] = m
	}
	ack, err := stream.PublishAtomic(ctx, s.nc, msgs)
	if err != nil {
		return nil, err
	}
	last := len(ws) - 1
	revs := make([]uint64, len(ws))
	for i := range revs {
		revs[i] = ack.Last - uint64(last-i)
	}
	return revs, nil
}

// fnError carries an error of updateMany's fn through update, so that it is
// told from a failed read or write.
type fnError struct{ err error }

func (e fnError) Error() string { return e.err.Error() }

// updateMany is update for many keys of one bucket with their writes
// group-committed: it reads every key (a few at a time), runs fn on each
// value, and commits the changed ones together. When the commit is not
// taken, or a key repeats, each key fn changed goes through update on its
// own — fn again, on a fresh read — so fn must be a pure function of its
// value, as update's. It returns fn's error per key (nil where it had
// none); the error is that of a failed read or write.
func updateMany[T any](ctx context.Context, w *committer, keys []string, zero func(i int) T, fn func(i int, v *T) (bool, error)) ([]error, error) {
	s, kv := w.s, w.kv
	errs := make([]error, len(keys))
	vals := make([]T, len(keys))
	revs := make([]uint64, len(keys))
	err := each(ctx, len(keys), func(ctx context.Context, i int) error {
		vals[i] = zero(i)
		rev, err := get(ctx, kv, keys[i], &vals[i])
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		revs[i] = rev
		return nil
	})
	if err != nil {
		return nil, err
	}
	var (
		ws      []write
		changed []int
		seen    = make(map[string]bool, len(keys))
		repeats bool
	)
	for i, key := range keys {
		repeats = repeats || seen[key]
		seen[key] = true
		ok, err := fn(i, &vals[i])
		if err != nil {
			errs[i] = err
			continue
		}
		if !ok {
			continue
		}
		b, err := store.EncodeState(vals[i])
		if err != nil {
			return nil, fmt.Errorf("encode %s: %w", key, err)
		}
		ws, changed = append(ws, write{key: key, value: b, rev: revs[i]}), append(changed, i)
	}
	if len(ws) == 0 {
		return errs, nil
	}
	if !repeats {
		if _, err := s.commit(ctx, kv, ws); err == nil {
			return errs, nil
		}
	}
	err = each(ctx, len(changed), func(ctx context.Context, j int) error {
		i := changed[j]
		_, _, err := update(ctx, w, keys[i], func() T { return zero(i) }, func(v *T) (bool, error) {
			ok, err := fn(i, v)
			if err != nil {
				return false, fnError{err}
			}
			return ok, nil
		})
		if fe, ok := errors.AsType[fnError](err); ok {
			errs[i] = fe.err
			return nil
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return errs, nil
}

// committer coalesces the single-key writes goroutines make to one bucket
// at the same time into group commits (stream.Group): a lone writer writes
// at once, alone, and concurrent writers (the notifier's intents handled one
// by one, many at a time) share one fsync. A batch that is refused leaves
// each of its writers to write alone, so each gets its own answer (a lost
// compare-and-set as jetstream reports it).
type committer struct {
	s     *Store
	kv    jetstream.KeyValue
	group stream.Group[write, uint64]
}

func newCommitter(s *Store, kv jetstream.KeyValue) *committer {
	return &committer{s: s, kv: kv, group: stream.Group[write, uint64]{
		Max:   maxBatch,
		Key:   func(w write) string { return w.key },
		Alone: func(ctx context.Context, w write) (uint64, error) { return single(ctx, kv, w) },
		Batch: func(ctx context.Context, ws []write) ([]uint64, error) { return s.commitBatch(ctx, kv.Bucket(), ws) },
	}}
}

// write stores w, alone or in a group commit, and returns its revision.
func (c *committer) write(ctx context.Context, w write) (uint64, error) {
	if !c.s.atomic {
		return c.group.Alone(ctx, w)
	}
	return c.group.Commit(ctx, w)
}

// single writes w on its own.
func single(ctx context.Context, kv jetstream.KeyValue, w write) (uint64, error) {
	switch {
	case w.blind:
		return kv.Put(ctx, w.key, w.value)
	case w.rev == 0:
		return kv.Create(ctx, w.key, w.value)
	default:
		return kv.Update(ctx, w.key, w.value, w.rev)
	}
}
