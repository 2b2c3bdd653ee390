package wire

import (
	"encoding/json"
	"testing"
)

func mustMarshal(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestIsJSONType(t *testing.T) {
	for ct, want := range map[string]bool{
		"application/json":                  true,
		"Application/JSON; charset=utf-8":   true,
		" application/json ":                true,
		"application/cloudevents+json":      true,
		"application/problem+JSON;q=1":      true,
		"+json":                             false,
		"text/json":                         false,
		"application/jsonl":                 false,
		"application/x-ndjson":              false,
		"application/octet-stream":          false,
		"":                                  false,
		"application/json-patch+json-seq":   false,
		"application/vnd.api+json; foo=bar": true,
	} {
		if got := IsJSONType(ct); got != want {
			t.Errorf("IsJSONType(%q) = %t, want %t", ct, got, want)
		}
	}
}

// FuzzAppendJSONString: the output is valid JSON and decodes to what
// encoding/json's own encoding of the string decodes to.
func FuzzAppendJSONString(f *testing.F) {
	for _, s := range []string{"", "plain", "q\"\\/", "\x00\x1f\x7f", "\n\r\t", "\xff\xfe", "é\u2028\u2029😀", "<&>"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := AppendJSONString(nil, s)
		var dec, want string
		if err := json.Unmarshal(got, &dec); err != nil {
			t.Fatalf("%q encoded as invalid JSON %s: %v", s, got, err)
		}
		if err := json.Unmarshal(mustMarshal(t, s), &want); err != nil {
			t.Fatal(err)
		}
		if dec != want {
			t.Fatalf("%q: decodes to %q, encoding/json's to %q", s, dec, want)
		}
	})
}
