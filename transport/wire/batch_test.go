package wire

import (
	"bytes"
	"encoding/base64"
	"maps"
	"strings"
	"testing"
)

// plainLines are lines of the shape the Go client and `edgeq bench` send
// for jobs without options.
var plainLines = []string{
	`{"payload_b64":"` + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xfe, 0x01, 'x'}, 86)) + `"}`,
	`{"payload":{"device":"pump-3","temp":21.5,"tags":["a","b"]}}`,
	` { "payload" : "x" } `,
	`{"payload_b64":""}`,
	`{"payload":null}`,
}

// TestBatchLinePlainAllocs holds a line with only a payload to one
// allocation, the payload (encoding/json's map of raw fields took a dozen
// and most of the batch endpoint's CPU).
func TestBatchLinePlainAllocs(t *testing.T) {
	for _, s := range plainLines {
		data := []byte(s)
		var l BatchLine
		allocs := testing.AllocsPerRun(100, func() {
			if err := l.UnmarshalJSON(data); err != nil {
				t.Fatalf("%s: %v", s, err)
			}
		})
		if allocs > 1 {
			t.Errorf("%s: %.0f allocations a line, want at most 1", s, allocs)
		}
	}
}

// FuzzBatchLineFast: whatever the fast path decodes, the general decoder
// decodes alike (same line, or same error), and the payload never shares
// the input's memory.
func FuzzBatchLineFast(f *testing.F) {
	for _, s := range append(plainLines,
		`{"payload_b64":"AA\u003d="}`, `{"payload_b64":"A A"}`, `{"payload_b64":"AA=="} x`,
		`{"payload_b64":null}`, `{"payload":1,"key":"k"}`, `{"payload":1}}`, `{"payload":{"a":1}`,
		`{"payload":"\u00e9"}`, "{\"payload_b64\":\"\xc3\xa9\"}", `{"payload" :[1,2] ,}`, `{"payload":1,}`,
		`{"payload_b64":"AAE"}`, `{"Payload":1}`, `{"payload": 1 }`+"\t\r\n", "{\"payload\":\f1}",
	) {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var fast BatchLine
		ok, fastErr := fast.unmarshalPlain(data)
		if !ok {
			return
		}
		var slow BatchLine
		slowErr := slow.unmarshalGeneral(data)
		if (fastErr == nil) != (slowErr == nil) || (fastErr != nil && fastErr.Error() != slowErr.Error()) {
			t.Fatalf("%q: fast path error %v, general %v", data, fastErr, slowErr)
		}
		if fastErr != nil {
			return
		}
		if !bytes.Equal(fast.Payload, slow.Payload) || fast.ContentType != slow.ContentType ||
			fast.Key != slow.Key || !maps.Equal(fast.Headers, slow.Headers) || (fast.Payload == nil) != (slow.Payload == nil) {
			t.Fatalf("%q: fast path %+v, general %+v", data, fast, slow)
		}
		if len(fast.Payload) > 0 {
			orig := fast.Payload[0]
			clear(data)
			if fast.Payload[0] != orig && orig != 0 {
				t.Fatalf("%q: payload shares the input", data)
			}
		}
	})
}

// TestBatchLineFastFallsBack: lines the fast path does not take decode as
// before (a few of the shapes it must leave to the general decoder).
func TestBatchLineFastFallsBack(t *testing.T) {
	for _, s := range []string{`{"payload_b64":"AA\u003d="}`, `{"payload":1,"key":"k"}`, `{"payload_b64":null}`, "{\"payload_b64\":\"\xc3\xa9\"}", `{"pay\u006coad":1}`} {
		var l BatchLine
		if ok, _ := l.unmarshalPlain([]byte(s)); ok {
			t.Errorf("fast path took %s", s)
		}
	}
	var l BatchLine
	if err := l.UnmarshalJSON([]byte(`{"payload_b64":"AA\u003d="}`)); err != nil || string(l.Payload) != "\x00" {
		t.Errorf("escaped base64: %q, %v", l.Payload, err)
	}
	if err := l.UnmarshalJSON([]byte(`{"payload_b64":"AAE"}`)); err == nil || !strings.HasPrefix(err.Error(), "payload_b64: bad base64") {
		t.Errorf("bad base64: %v", err)
	}
}
