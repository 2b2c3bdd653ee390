package e2e

import (
	"fmt"
	"strings"
	"testing"

	"github.com/edgeq/edgeq/resource"
	"github.com/edgeq/edgeq/storage"
)

// TestSoftMemoryLimit: without GOMEMLIMIT, serve sets the Go runtime's soft
// limit from the cgroup's limit, else from storage.memory, and says so; a
// GOMEMLIMIT in the environment wins.
func TestSoftMemoryLimit(t *testing.T) {
	want := fmt.Sprintf("mib=%d source=storage.memory", storage.SoftMemoryLimit(storage.ProfileSmall)>>20)
	if cg, ok := resource.CgroupMemoryLimit("/"); ok {
		want = fmt.Sprintf("mib=%d source=cgroup", int64(cg)*2/3>>20)
	}
	for _, tc := range []struct {
		name string
		env  []string
		want string
	}{
		{"derived", nil, want},
		{"GOMEMLIMIT wins", []string{"GOMEMLIMIT=100MiB"}, "mib=100 source=GOMEMLIMIT"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("GOMEMLIMIT", "") // empty is unset, to the runtime and to serve
			defer func(old []string) { daemonEnv = old }(daemonEnv)
			daemonEnv = tc.env
			d := startDaemon(t, t.TempDir())
			d.kill()
			line := ""
			for l := range strings.Lines(d.log.String()) {
				if strings.Contains(l, "go memory limit") {
					line = l
				}
			}
			if !strings.Contains(line, tc.want) {
				t.Errorf("log line %q, want %q in it; log:\n%s", line, tc.want, d.log)
			}
		})
	}
}
