package native

import (
	"bytes"
	"encoding/binary"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/edgeq/edgeq/engine/job"
)

// FuzzFrame feeds arbitrary frames to every decoder of the server and the
// client: none may panic, allocate beyond what the frame can hold, or
// accept trailing bytes; a request that decodes re-encodes to itself.
func FuzzFrame(f *testing.F) {
	seed := [][]byte{
		appendRequest(nil, opEnqueue, "q", []param{{"key", "k"}, {"delay", "1s"}, {"header.trace", "x"}}, []byte("payload")),
		appendRequest(nil, opBatch, "q", nil, batchData([]param{{"ttr", "1s"}}, nil)),
		appendRequest(nil, opAcks, "", nil, acksData("0000000000000001", "l")),
		appendRequest(nil, opLease, "q", []param{{"max", "10"}, {"wait", "1s"}}, nil),
		appendRequest(nil, opHello, Version, []param{{"token", "t"}}, nil),
		appendError(nil, "queue_full", "queue full", 3),
		{0, 0, 0, 2, opEnqueue, 0xff},
		{0, 0, 0, 1, opAck},
	}
	lease := binary.AppendUvarint(nil, 1)
	lease = appendJob(lease, &job.Job{ID: 7, Queue: "q", Attempt: 1, LeaseID: "l", Headers: map[string]string{"a": "b"},
		CreatedAt: time.Unix(1, 0), Payload: []byte("p")})
	seed = append(seed, slices.Concat([]byte{0, 0, 0, 0, statusOK}, lease))
	for _, s := range seed {
		f.Add(s)
	}
	s := &Server{maxPayload: 1 << 10}
	f.Fuzz(func(t *testing.T, frame []byte) {
		var hdr [frameHeader]byte
		n, err := readFrameLen(bytes.NewReader(frame), &hdr, 1<<16)
		if err == nil && (n == 0 || n > 1<<16) {
			t.Fatalf("length %d accepted", n)
		}
		if len(frame) <= frameHeader {
			return
		}
		body := frame[frameHeader+1:]
		_ = decodeJobs(&decoder{b: body})
		d := decoder{b: body}
		_ = decodeAckAnswers(&d, 1)
		_ = decodeJobs(&d)
		_ = decodeError(body)
		r, err := decodeRequest(body)
		if err != nil {
			return
		}
		re := appendRequest(nil, frame[frameHeader], r.target, r.params, r.data)
		if !bytes.Equal(re[frameHeader+1:], body) {
			// Only a non-minimal varint may re-encode differently.
			r2, err := decodeRequest(re[frameHeader+1:])
			if err != nil || r2.target != r.target || !slices.Equal(r2.params, r.params) || !bytes.Equal(r2.data, r.data) {
				t.Fatalf("request %+v re-encodes to %+v (%v)", r, r2, err)
			}
		}
		if _, err := s.batchJobs(r); err != nil && !errors.Is(err, job.ErrInvalidArgument) && !errors.Is(err, job.ErrTooLarge) {
			t.Fatalf("batch refused with %v, want invalid_argument or payload_too_large", err)
		}
		if _, err := decodeAcks(r); err != nil && !errors.Is(err, job.ErrInvalidArgument) {
			t.Fatalf("acks refused with %v, want invalid_argument", err)
		}
		if _, err := s.newJob("q", r.params, r.data); err != nil && !errors.Is(err, job.ErrInvalidArgument) && !errors.Is(err, job.ErrTooLarge) {
			t.Fatalf("enqueue refused with %v", err)
		}
	})
}

func TestDecoderRefusesTruncation(t *testing.T) {
	full := appendRequest(nil, opEnqueue, "queue", []param{{"key", "k"}}, nil)
	body := full[frameHeader+1:]
	for i := range len(body) - 1 {
		if _, err := decodeRequest(body[:i]); err == nil {
			t.Errorf("a body cut to %d of %d bytes decoded", i, len(body))
		}
	}
	// A count the frame cannot hold allocates nothing.
	huge := binary.AppendUvarint(nil, 1<<40)
	if _, err := decodeAcks(request{data: huge}); !errors.Is(err, job.ErrInvalidArgument) {
		t.Errorf("acks of 2^40 items: %v", err)
	}
}
