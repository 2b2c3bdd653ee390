package storage

import (
	"bytes"
	"fmt"
	"math"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/edgeq/edgeq/engine/job"
)

// FuzzKeyCodec checks that every key and index-value encoder round-trips
// through its decoder, and that the decoders never panic on arbitrary bytes.
func FuzzKeyCodec(f *testing.F) {
	f.Add("q", uint64(1), uint64(1), int64(0), "", []byte{})
	f.Add("a", uint64(math.MaxUint64), uint64(0), int64(-1), "key", []byte{prefixReady, 'a', 0, 0, 0, 0, 0, 0, 0, 0, 1})
	f.Add("ab.c-d_e", uint64(1<<40), uint64(7), time.Unix(1_700_000_000, 5).UnixNano(), string(bytes.Repeat([]byte("k"), 200)), []byte{prefixDedupe, 'q', 0, dedupeSHA256})
	f.Add(string(bytes.Repeat([]byte("z"), 64)), uint64(2), uint64(3), int64(math.MinInt64), "\x00\xff", []byte{prefixDelayed})
	f.Add("bad\x00queue", uint64(2), uint64(3), int64(math.MaxInt64), "k", []byte{prefixLeased, 1, 2, 3, 4, 5, 6, 7, 8})
	f.Add("q", uint64(9), uint64(math.MaxUint64), int64(60), "lease-9", []byte{0, 0, 0, 0, 0, 0, 0, 1, 3, 200, 'l', 'q'})
	f.Add("q", uint64(9), uint64(1), int64(60), "", []byte{0, 0, 0, 0, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0, 'q'})
	f.Fuzz(func(t *testing.T, queue string, id, seq uint64, at int64, key string, raw []byte) {
		// Decoders on arbitrary bytes: errors, never panics.
		for _, p := range []byte{prefixMeta, prefixPayload, prefixLeased} {
			_, _ = decodeIDKey(p, raw)
		}
		for _, p := range []byte{prefixReady, prefixDead} {
			_, _, _ = decodeQueueKey(p, raw)
		}
		for _, p := range []byte{prefixDelayed, prefixExpiry} {
			_, _, _ = decodeTimedKey(p, raw)
		}
		_, _, _, _ = decodeDedupeKey(raw)
		_, _, _ = decodeReadyValue(raw)
		_, _, _, _ = decodeDelayedValue(raw)
		_, _, _ = decodeGroupKey(raw)
		_, _, _ = decodeLeasedValue(raw)
		_, _, _, _, _ = splitLeasedValue(raw)
		_, _ = decodeIDValue(raw)
		_, _ = decodePayload(raw)

		jid := job.ID(id)
		for _, p := range []byte{prefixMeta, prefixPayload, prefixLeased} {
			if got, err := decodeIDKey(p, idKey(p, jid)); err != nil || got != jid {
				t.Errorf("id key %d: got %d, %v", id, got, err)
			}
		}
		for _, p := range []byte{prefixDelayed, prefixExpiry} {
			k := timedKey(p, at, jid)
			if gotAt, gotID, err := decodeTimedKey(p, k); err != nil || gotAt != at || gotID != jid {
				t.Errorf("timed key (%d, %d): got (%d, %d), %v", at, id, gotAt, gotID, err)
			}
			// Byte order is time order.
			if at < math.MaxInt64 && bytes.Compare(k, timedKey(p, at+1, 0)) >= 0 {
				t.Errorf("timed key of %d does not sort before %d", at, at+1)
			}
		}
		if gotID, gotAt, err := decodeReadyValue(readyValue(jid, at)); err != nil || gotID != jid || gotAt != at {
			t.Errorf("ready value: got (%d, %d), %v", gotID, gotAt, err)
		}
		if gotID, err := decodeIDValue(idValue(jid)); err != nil || gotID != jid {
			t.Errorf("id value: got %d, %v", gotID, err)
		}

		if checkKeyQueue(queue) != nil {
			if _, err := readyKey(queue, seq); err == nil {
				t.Errorf("readyKey accepted queue %q", queue)
			}
			return
		}
		for _, p := range []byte{prefixReady, prefixDead} {
			k, err := queueKey(p, queue, seq)
			if err != nil {
				t.Fatal(err)
			}
			if q, n, err := decodeQueueKey(p, k); err != nil || q != queue || n != seq {
				t.Errorf("queue key (%q, %d): got (%q, %d), %v", queue, seq, q, n, err)
			}
			// No other queue's range holds this key: the prefix of queue
			// plus anything is never another queue's prefix.
			pre, _ := queuePrefix(p, queue)
			if !bytes.HasPrefix(k, pre) {
				t.Errorf("key %x lacks its queue prefix %x", k, pre)
			}
			if other := queue + "x"; checkKeyQueue(other) == nil {
				otherPre, _ := queuePrefix(p, other)
				if bytes.HasPrefix(k, otherPre) || bytes.HasPrefix(otherPre, pre) {
					t.Errorf("queues %q and %q share a prefix", queue, other)
				}
			}
		}
		// The lease fields: seq as the attempt (any int, negative ones too),
		// key as the LeaseID.
		l := lease{expires: at, attempt: int(seq), id: key}
		lv := leasedValue(l, queue)
		if got, q, err := decodeLeasedValue(lv); err != nil || got != l || string(q) != queue {
			t.Errorf("leased value (%+v, %q): got (%+v, %q), %v", l, queue, got, q, err)
		}
		if gotAt, gotAttempt, gotID, q, err := splitLeasedValue(lv); err != nil || gotAt != at ||
			gotAttempt != l.attempt || string(gotID) != key || string(q) != queue {
			t.Errorf("split leased value (%+v, %q): got (%d, %d, %q, %q), %v", l, queue, gotAt, gotAttempt, gotID, q, err)
		}
		// Every strict prefix that cuts into the lease fields is refused.
		for n := range len(lv) - len(queue) {
			if _, _, err := decodeLeasedValue(lv[:n]); err == nil {
				t.Errorf("leased value cut to %d of %d bytes decoded", n, len(lv))
			}
		}
		dk, err := dedupeKey(queue, key)
		if err != nil {
			t.Fatal(err)
		}
		q, form, kb, err := decodeDedupeKey(dk)
		switch {
		case err != nil || q != queue:
			t.Errorf("dedupe key (%q, %q): got %q, %v", queue, key, q, err)
		case len(key) <= maxRawDedupeKey && (form != dedupeRaw || string(kb) != key):
			t.Errorf("dedupe key %q: got form %d key %q", key, form, kb)
		case len(key) > maxRawDedupeKey && form != dedupeSHA256:
			t.Errorf("long dedupe key: form %d, want SHA-256", form)
		}
		if p, err := decodePayload(encodePayload([]byte(key))); err != nil || string(p) != key {
			t.Errorf("payload %q: got %q, %v", key, p, err)
		}
		// Groups: key as the group. A delayed value carries the ReadySeq
		// (a retry waiting with its place) and the group, if any.
		j := &job.Job{Queue: queue, Group: key, ReadySeq: seq}
		if checkKeyGroup(key) != nil {
			if _, err := groupKey(queue, key, seq); err == nil {
				t.Errorf("groupKey accepted group %q", key)
			}
			j.Group = ""
		} else {
			gk, err := groupKey(queue, key, seq)
			if err != nil {
				t.Fatal(err)
			}
			q, rest, err := splitQueue(prefixGroup, gk)
			if err != nil || q != queue {
				t.Fatalf("group key (%q, %q): queue %q, %v", queue, key, q, err)
			}
			if g, n, err := decodeGroupKey(rest); err != nil || string(g) != key || n != seq {
				t.Errorf("group key (%q, %q, %d): got (%q, %d), %v", queue, key, seq, g, n, err)
			}
		}
		dq, dg, dseq, err := decodeDelayedValue(delayedValue(j))
		if err != nil || string(dq) != queue || string(dg) != j.Group || dseq != seq {
			t.Errorf("delayed value (%q, %q, %d): got (%q, %q, %d), %v", queue, j.Group, seq, dq, dg, dseq, err)
		}
	})
}

// FuzzRecord checks that decoding arbitrary bytes never panics, that what
// decodes re-encodes to the same job and payload section, and that
// encode→decode round-trips, the payload inline up to inlinePayloadMax
// bytes and checked by its CRC.
func FuzzRecord(f *testing.F) {
	full := &job.Job{
		ID: 1 << 50, Queue: "orders", State: job.StateLeased, Attempt: 3, MaxAttempts: 5,
		CreatedAt: time.Unix(1_700_000_000, 1), RunAt: time.Unix(1_700_000_001, 0), ExpiresAt: time.Unix(1_700_009_000, 0),
		TTR: time.Minute, Key: "k-1", Headers: map[string]string{"a": "1", "mqtt-topic": "s/1"},
		ContentType: "application/json", LastError: "exit 1", ReadySeq: 99, LeaseID: "l-1",
		LeaseExpires: time.Unix(1_700_000_060, 0),
	}
	ready := &job.Job{ID: 1, Queue: "q", State: job.StateReady}
	small, large := []byte(`{"t":21.5}`), bytes.Repeat([]byte{'L'}, inlinePayloadMax+1)
	badCRC := encodeRecord(ready, payloadSection(small))
	badCRC[len(badCRC)-1] ^= 1
	f.Add(encodeRecord(full, payloadSection(small)), "q", int64(1), "h", "v", int64(-5), small)
	f.Add(encodeRecord(full, payloadSection(large)), "q", int64(2), "h", "", int64(5), large)
	f.Add(encodeRecord(ready, payloadSection(nil)), "", int64(0), "", "", int64(0), []byte{})
	f.Add(encodeRecord(ready, payloadSection(large[:inlinePayloadMax])), "", int64(3), "", "", int64(0), large[:inlinePayloadMax])
	f.Add(badCRC, "q", int64(4), "", "", int64(0), small)
	f.Add(encodeRecord(ready, []byte{10, payloadApart}), "q", int64(4), "", "", int64(0), small) // small payload kept apart
	f.Add(encodeRecord(ready, []byte{0xff, 0xff, 0xff, 0xff, 0x7f, payloadApart}), "q", int64(4), "", "", int64(0), []byte(nil))
	f.Add(encodeRecord(ready, []byte{5, payloadInline, 0, 0, 0, 0, 'a'}), "q", int64(4), "", "", int64(0), []byte("a"))
	f.Add([]byte{recordV1, 1, 1, 'q', byte(job.StateDead), 0xff, 0xff, 0xff}, "a", int64(math.MaxInt64), "", "x", int64(math.MinInt64), []byte{})
	f.Add([]byte{recordV2, 1, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff, 0x0f}, "", int64(7), "k", "", int64(1), []byte{})
	f.Add([]byte{}, "q", int64(0), "", "", int64(0), []byte(nil))
	f.Fuzz(func(t *testing.T, data []byte, queue string, n int64, hk, hv string, nanos int64, payload []byte) {
		if j, section, err := decodeRecord(data); err == nil {
			again, againSection, err := decodeRecord(encodeRecord(j, section))
			if err != nil {
				t.Fatalf("re-encoded record does not decode: %v", err)
			}
			if d := recordDiff(again, j); d != "" {
				t.Errorf("decode(encode(decode(data))) differs: %s", d)
			}
			if again.Size != j.Size || !bytes.Equal(again.Payload, j.Payload) || !bytes.Equal(againSection, section) {
				t.Errorf("decode(encode(decode(data))): payload of %d bytes %q, want %d bytes %q",
					again.Size, again.Payload, j.Size, j.Payload)
			}
			if (j.Payload != nil) != (j.Size <= inlinePayloadMax) || (j.Payload != nil && len(j.Payload) != j.Size) {
				t.Errorf("decoded Size %d with a payload of %d bytes (inline: %v)", j.Size, len(j.Payload), j.Payload != nil)
			}
		}
		j := &job.Job{
			ID: job.ID(uint64(n)), Queue: queue, State: job.State(1 + uint64(n)%4),
			Attempt: int(int32(n)), MaxAttempts: int(int32(n >> 32)),
			CreatedAt: fromNanos(nanos), RunAt: fromNanos(-nanos), ExpiresAt: fromNanos(n),
			TTR: time.Duration(nanos), Key: hk, ContentType: hv, LastError: hk + hv,
			ReadySeq: uint64(nanos), LeaseID: hv, LeaseExpires: fromNanos(nanos ^ n),
		}
		if hk != "" || hv != "" {
			j.Headers = map[string]string{hk: hv, "fixed": hk}
		}
		rec := encodeRecord(j, payloadSection(payload))
		got, _, err := decodeRecord(rec)
		if err != nil {
			t.Fatalf("decode(encode(job)): %v", err)
		}
		if d := recordDiff(got, j); d != "" {
			t.Errorf("decode(encode(job)) differs: %s", d)
		}
		inline := len(payload) <= inlinePayloadMax
		switch {
		case got.Size != len(payload):
			t.Errorf("decode(encode(job)): Size %d, want %d", got.Size, len(payload))
		case inline && (got.Payload == nil || !bytes.Equal(got.Payload, payload)):
			t.Errorf("decode(encode(job)): inline payload %q, want %q", got.Payload, payload)
		case !inline && got.Payload != nil:
			t.Errorf("decode(encode(job)): a payload of %d bytes came back inline", len(payload))
		}
		if inline && len(payload) > 0 {
			rec[len(rec)-1-int(uint64(n)%uint64(len(payload)))] ^= 0x80
			if _, _, err := decodeRecord(rec); err == nil {
				t.Errorf("a damaged inline payload decoded without error")
			}
		}
	})
}

// recordDiff names the first field that differs, comparing times as
// instants and nil headers as empty.
func recordDiff(got, want *job.Job) string {
	type flat struct {
		ID                                   job.ID
		Queue                                string
		State                                job.State
		Attempt, MaxAttempts                 int
		Created, Run, Expires, LeaseExpires  int64
		TTR                                  time.Duration
		Key, ContentType, LastError, LeaseID string
		ReadySeq                             uint64
		Headers                              []string
	}
	fl := func(j *job.Job) flat {
		var h []string
		for k, v := range j.Headers {
			h = append(h, k+"\x00"+v)
		}
		slices.Sort(h)
		return flat{j.ID, j.Queue, j.State, j.Attempt, j.MaxAttempts, nanos(j.CreatedAt), nanos(j.RunAt),
			nanos(j.ExpiresAt), nanos(j.LeaseExpires), j.TTR, j.Key, j.ContentType, j.LastError, j.LeaseID, j.ReadySeq, h}
	}
	if g, w := fl(got), fl(want); !reflect.DeepEqual(g, w) {
		return fmt.Sprintf("got %+v, want %+v", g, w)
	}
	return ""
}
