package storage

import (
	"encoding/binary"
	"fmt"
	"sort"

	"github.com/dgraph-io/badger/v4"

	"github.com/edgeq/edgeq/engine/store"
)

// scheduleVersion is the first byte of a schedule value.
const scheduleVersion byte = 1

// scheduleKey is prefixSchedule and the name.
func scheduleKey(name string) ([]byte, error) {
	if err := checkKeyQueue(name); err != nil {
		return nil, fmt.Errorf("schedule name: %w", err)
	}
	return append([]byte{prefixSchedule}, name...), nil
}

// encodeSchedule is version(1) Last(8) Fired(8) spec, where a nil spec
// (a schedule of the configuration file) has no bytes after Fired and an
// API one has a 1 byte before its spec, so that an empty spec survives.
func encodeSchedule(s store.Schedule) []byte {
	v := make([]byte, 0, 18+len(s.Spec))
	v = append(v, scheduleVersion)
	v = binary.BigEndian.AppendUint64(v, orderedNanos(nanos(s.Last)))
	v = binary.BigEndian.AppendUint64(v, orderedNanos(nanos(s.Fired)))
	if s.Spec != nil {
		v = append(v, 1)
		v = append(v, s.Spec...)
	}
	return v
}

func decodeSchedule(name string, v []byte) (store.Schedule, error) {
	if len(v) < 17 || v[0] != scheduleVersion || (len(v) > 17 && v[17] != 1) {
		return store.Schedule{}, fmt.Errorf("schedule %s: %w", name, errBadValue)
	}
	s := store.Schedule{
		Name:  name,
		Last:  fromNanos(unorderedNanos(binary.BigEndian.Uint64(v[1:9]))),
		Fired: fromNanos(unorderedNanos(binary.BigEndian.Uint64(v[9:17]))),
	}
	if len(v) > 17 {
		s.Spec = append([]byte{}, v[18:]...)
	}
	return s, nil
}

// Schedules reads through the transaction it is given: a write
// transaction's read sees its own writes.
func (r reader) Schedules() (out []store.Schedule, err error) {
	defer r.b.recovered(&err, "read schedules")
	if r.b.closed.Load() {
		return nil, ErrClosed
	}
	p := []byte{prefixSchedule}
	err = r.iterate(p, p, func(item *badger.Item) (bool, error) {
		name := string(item.Key()[1:])
		return true, item.Value(func(v []byte) error {
			s, err := decodeSchedule(name, v)
			out = append(out, s)
			return err
		})
	})
	if err != nil {
		return nil, translate("read schedules", err)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

func (t *txn) PutSchedule(s store.Schedule) (err error) {
	defer t.b.recovered(&err, "write schedule")
	if err := t.check(); err != nil {
		return err
	}
	k, err := scheduleKey(s.Name)
	if err != nil {
		return err
	}
	return t.apply("write schedule", write{key: k, val: encodeSchedule(s)})
}

func (t *txn) DeleteSchedule(name string) (err error) {
	defer t.b.recovered(&err, "delete schedule")
	if err := t.check(); err != nil {
		return err
	}
	k, err := scheduleKey(name)
	if err != nil {
		return err
	}
	return t.apply("delete schedule", write{key: k, del: true})
}

// scheduleFits is what an Op.Schedule adds to Fits: its record and a
// dedupe key.
func scheduleFits(s *store.Schedule) (entries, bytes int) {
	if s == nil {
		return 0, 0
	}
	return 2, 2*len(s.Name) + len(s.Spec) + store.MaxScheduleKey + 3*8 + 2
}
