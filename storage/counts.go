package storage

import (
	"bytes"
	"fmt"

	"github.com/dgraph-io/badger/v4"

	"github.com/edgeq/edgeq/engine/job"
	"github.com/edgeq/edgeq/engine/store"
)

// Counts, at recovery: the index sizes of every queue, and the payload
// bytes of the queues the engine bounds by bytes.

func (r reader) Counts(bytesOf func(queue string) bool) (counts map[string]store.Counts, err error) {
	defer r.b.recovered(&err, "count indexes")
	if r.b.closed.Load() {
		return nil, ErrClosed
	}
	m := make(map[string]*store.Counts)
	at := func(q []byte) *store.Counts {
		c := m[string(q)] // no allocation for the lookup
		if c == nil {
			c = &store.Counts{}
			m[string(q)] = c
		}
		return c
	}
	if err := r.countIndexes(at); err != nil {
		return nil, err
	}
	want := map[string]*store.Counts{}
	for q, c := range m {
		if bytesOf != nil && c.Ready+c.Delayed+c.Leased > 0 && bytesOf(q) {
			want[q] = c
		}
	}
	if err := r.countBytes(want); err != nil {
		return nil, err
	}
	counts = make(map[string]store.Counts, len(m))
	for q, c := range m {
		counts[q] = *c
	}
	return counts, nil
}

// countIndexes counts the index entries of each queue, reading no record.
func (r reader) countIndexes(at func(queue []byte) *store.Counts) error {
	// Ready and dead: the queue is in the key.
	for _, p := range []byte{prefixReady, prefixDead} {
		err := r.iterate([]byte{p}, []byte{p}, func(item *badger.Item) (bool, error) {
			k := item.Key()
			i := bytes.IndexByte(k, 0)
			if i < 2 || len(k) != i+9 {
				return false, fmt.Errorf("index %x: %w", k, errBadKey)
			}
			c := at(k[1:i])
			if p == prefixReady {
				c.Ready++
			} else {
				c.Dead++
			}
			return true, nil
		})
		if err != nil {
			return translate("count indexes", err)
		}
	}
	// Group-ready: ready jobs with a group; the queue is in the key.
	err := r.iterate([]byte{prefixGroup}, []byte{prefixGroup}, func(item *badger.Item) (bool, error) {
		q, rest, err := splitQueue(prefixGroup, item.Key())
		if err == nil {
			_, _, err = decodeGroupKey(rest)
		}
		if err != nil {
			return false, fmt.Errorf("group-ready index %x: %w", item.Key(), err)
		}
		at([]byte(q)).Ready++
		return true, nil
	})
	if err != nil {
		return translate("count indexes", err)
	}
	// Delayed, done and leased: the queue is in the value.
	for _, p := range []byte{prefixDelayed, prefixDone, prefixLeased} {
		err := r.iterate([]byte{p}, []byte{p}, func(item *badger.Item) (bool, error) {
			return true, item.Value(func(v []byte) error {
				switch p {
				case prefixDelayed:
					q, _, _, err := decodeDelayedValue(v)
					if err != nil {
						return fmt.Errorf("delayed index %x: %w", item.Key(), err)
					}
					at(q).Delayed++
					return nil
				case prefixDone:
					if err := checkValueQueue(v); err != nil {
						return fmt.Errorf("done index %x: %w", item.Key(), err)
					}
					at(v).Done++
					return nil
				}
				_, _, _, q, err := splitLeasedValue(v)
				if err != nil {
					return fmt.Errorf("leased index %x: %w", item.Key(), err)
				}
				at(q).Leased++
				return nil
			})
		})
		if err != nil {
			return translate("count indexes", err)
		}
	}
	return nil
}

// countBytes adds up the payload sizes of the ready, delayed and leased
// jobs of the queues in want, reading only their records: the ready index
// of each, one pass over the delayed and leased indexes (the queue is in
// their values), then each job's record. Its cost follows those queues'
// jobs, not the store's: a restart does not read a million-job backlog of
// a queue nobody bounds by bytes.
func (r reader) countBytes(want map[string]*store.Counts) error {
	if len(want) == 0 {
		return nil
	}
	add := func(id job.ID, c *store.Counts) error {
		j, err := r.Job(id, false)
		if err != nil {
			return err
		}
		c.Bytes += int64(j.Size)
		return nil
	}
	for q, c := range want {
		var after uint64
		for {
			refs, err := r.Ready(q, after, 1000)
			if err != nil {
				return err
			}
			for _, ref := range refs {
				if err := add(ref.ID, c); err != nil {
					return err
				}
				after = ref.Seq
			}
			if len(refs) < 1000 {
				break
			}
		}
	}
	if err := r.groupBytes(want, add); err != nil {
		return err
	}
	var ids []job.ID
	var of []*store.Counts
	err := r.iterate([]byte{prefixDelayed}, []byte{prefixDelayed}, func(item *badger.Item) (bool, error) {
		return true, item.Value(func(v []byte) error {
			q, _, _, err := decodeDelayedValue(v)
			if err != nil {
				return fmt.Errorf("delayed index %x: %w", item.Key(), err)
			}
			if c := want[string(q)]; c != nil {
				_, id, err := decodeTimedKey(prefixDelayed, item.Key())
				if err != nil {
					return fmt.Errorf("delayed index %x: %w", item.Key(), err)
				}
				ids, of = append(ids, id), append(of, c)
			}
			return nil
		})
	})
	if err != nil {
		return translate("count payload bytes", err)
	}
	err = r.iterate([]byte{prefixLeased}, []byte{prefixLeased}, func(item *badger.Item) (bool, error) {
		return true, item.Value(func(v []byte) error {
			_, _, _, q, err := splitLeasedValue(v)
			if err != nil {
				return fmt.Errorf("leased index %x: %w", item.Key(), err)
			}
			if c := want[string(q)]; c != nil {
				id, err := decodeIDKey(prefixLeased, item.Key())
				if err != nil {
					return fmt.Errorf("leased index %x: %w", item.Key(), err)
				}
				ids, of = append(ids, id), append(of, c)
			}
			return nil
		})
	})
	if err != nil {
		return translate("count payload bytes", err)
	}
	for i, id := range ids {
		if err := add(id, of[i]); err != nil {
			return err
		}
	}
	return nil
}

// groupBytes calls add on the ready jobs with a group of the queues in want.
func (r reader) groupBytes(want map[string]*store.Counts, add func(job.ID, *store.Counts) error) error {
	for q, c := range want {
		var from store.Ref
		for {
			refs, err := r.GroupReady(q, from, 1000)
			if err != nil {
				return err
			}
			for _, ref := range refs {
				if err := add(ref.ID, c); err != nil {
					return err
				}
				from = ref
			}
			if len(refs) < 1000 {
				break
			}
		}
	}
	return nil
}
