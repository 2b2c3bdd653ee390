package storage

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/edgeq/edgeq/engine/job"
)

// withExtFields swaps extFields for the test: two optional fields kept, for
// the test, in side, by job ID.
func withExtFields(t *testing.T, side map[job.ID][2]string) {
	t.Helper()
	saved := extFields
	t.Cleanup(func() { extFields = saved })
	field := func(tag uint64, i int) extField {
		return extField{
			tag: tag, name: "f" + string(rune('0'+tag)),
			get: func(j *job.Job) string { return side[j.ID][i] },
			set: func(j *job.Job, v string) error {
				if v == "bad" {
					return errors.New("bad value")
				}
				f := side[j.ID]
				f[i] = v
				side[j.ID] = f
				return nil
			},
		}
	}
	extFields = []extField{field(3, 0), field(5, 1)}
}

func TestRecordOptionalFields(t *testing.T) {
	side := map[job.ID][2]string{}
	withExtFields(t, side)
	now := time.Unix(1700000000, 0)
	j := &job.Job{ID: 9, Queue: "q", State: job.StateReady, CreatedAt: now, RunAt: now, ReadySeq: 4}

	plain := encodeRecord(j, payloadSection([]byte("p")))
	if plain[0] != recordV2 {
		t.Fatalf("a job with no optional field is written as version %d, want 2", plain[0])
	}

	side[9] = [2]string{"", "second"}
	rec := encodeRecord(j, payloadSection([]byte("p")))
	if rec[0] != recordV3 {
		t.Fatalf("a job with an optional field is written as version %d, want 3", rec[0])
	}
	delete(side, 9)
	got, _, err := decodeRecord(rec)
	if err != nil {
		t.Fatal(err)
	}
	if side[9] != [2]string{"", "second"} || string(got.Payload) != "p" || got.ReadySeq != 4 {
		t.Fatalf("round trip: fields %q, payload %q, ready seq %d", side[9], got.Payload, got.ReadySeq)
	}

	// Damaged or foreign optional sections are refused, naming the cause.
	head := plain[:len(plain)-len(payloadSection([]byte("p")))]
	build := func(ext ...byte) []byte {
		b := append([]byte{recordV3}, head[1:]...)
		b = append(b, ext...)
		return append(b, payloadSection([]byte("p"))...)
	}
	for name, tc := range map[string]struct {
		rec  []byte
		want string
	}{
		"unknown tag":   {build(1, 4, 1, 'x'), "optional field 4 unknown"},
		"out of order":  {build(2, 5, 1, 'x', 3, 1, 'y'), "optional field 3 unknown or out of order"},
		"repeated":      {build(2, 3, 1, 'x', 3, 1, 'y'), "optional field 3 unknown or out of order"},
		"empty value":   {build(1, 3, 0), "optional field f3 empty"},
		"zero count":    {build(0), "0 optional fields"},
		"too many":      {build(3, 3, 1, 'x'), "3 optional fields"},
		"bad value":     {build(1, 3, 3, 'b', 'a', 'd'), "optional field f3: bad value"},
		"truncated":     {append([]byte{recordV3}, head[1:]...), "truncated"},
		"v2 with field": {append(append(bytes.Clone(head), 1, 3, 1, 'x'), payloadSection([]byte("p"))...), "malformed"},
	} {
		if _, _, err := decodeRecord(tc.rec); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want %q", name, err, tc.want)
		}
	}
}
