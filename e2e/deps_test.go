package e2e

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDependencyDirection keeps the arrows of STYLE.md pointing one way:
// the engine knows no storage, transport, Badger, HTTP or MQTT; storage knows
// no transport; engine/job is a leaf; the binary carries no test FS.
func TestDependencyDirection(t *testing.T) {
	const mod = "github.com/edgeq/edgeq/"
	rules := []struct {
		pkg       string
		direct    bool // check only direct imports (Badger itself pulls in net/http via expvar)
		forbidden []string
	}{
		{"engine", false, []string{mod + "storage", mod + "transport", mod + "resource", mod + "engine/handler", "github.com/dgraph-io/badger", "net/http", "github.com/eclipse/paho.mqtt.golang", "github.com/prometheus"}},
		{"engine/job", false, []string{mod + "engine", "github.com/"}},
		{"engine/ring", false, []string{mod, "github.com/"}},
		{"storage", true, []string{mod + "transport", mod + "resource", "net/http", "github.com/eclipse/paho.mqtt.golang"}},
		// The crash-simulating FS is for tests: the binary must not grow by it.
		{".", false, []string{mod + "internal/crashfs", "github.com/hanwen/go-fuse"}},
		{"transport/httpapi", false, []string{mod + "storage", "github.com/dgraph-io/badger", "github.com/eclipse/paho.mqtt.golang"}},
	}
	for _, r := range rules {
		t.Run(r.pkg, func(t *testing.T) {
			args := []string{"list", "-deps", "../" + r.pkg}
			if r.direct {
				args = []string{"list", "-f", `{{join .Imports "\n"}}`, "../" + r.pkg}
			}
			out, err := exec.Command("go", args...).CombinedOutput()
			if err != nil {
				t.Fatalf("go list -deps %s: %v\n%s", r.pkg, err, out)
			}
			self := mod + r.pkg
			for _, dep := range strings.Fields(string(out)) {
				if dep == self {
					continue
				}
				for _, f := range r.forbidden {
					if dep == f || strings.HasPrefix(dep, f+"/") || (strings.HasSuffix(f, "/") && strings.HasPrefix(dep, f)) {
						t.Errorf("%s imports %s (forbidden: %s)", r.pkg, dep, f)
					}
				}
			}
		})
	}
}
