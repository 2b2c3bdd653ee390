package job

import (
	"errors"
	"strings"
	"testing"
)

func TestCheckTrace(t *testing.T) {
	const good = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	for _, tc := range []struct {
		name, parent, state, want string
	}{
		{"none", "", "", ""},
		{"parent", good, "", ""},
		{"parent and state", good, "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE", ""},
		{"later version, more fields", "01" + good[2:] + "-what-comes", "", ""},
		{"state alone", "", "a=b", "tracestate: needs a traceparent"},
		{"short", good[:54], "", "is malformed"},
		{"version 00, trailing", good + "-x", "", "is malformed"},
		{"upper case", strings.ToUpper(good), "", "is not lowercase hex"},
		{"bad separator", strings.Replace(good, "-", "_", 1), "", "is malformed"},
		{"version ff", "ff" + good[2:], "", "invalid version ff"},
		{"zero trace id", "00-" + strings.Repeat("0", 32) + good[35:], "", "all-zero trace id"},
		{"zero parent id", good[:36] + strings.Repeat("0", 16) + good[52:], "", "all-zero parent id"},
		{"state too long", good, strings.Repeat("a", 513), "at most 512"},
		{"state not ascii", good, "a=\u00e9", "not printable ASCII"},
		{"state too many", good, strings.Repeat("a=b,", 32) + "a=b", "33 members"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckTrace(tc.parent, tc.state)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("CheckTrace = %v, want nil", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidArgument) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("CheckTrace = %v, want invalid argument with %q", err, tc.want)
			}
		})
	}
}
