package e2e

import (
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// TestDependencyDirection keeps the arrows of STYLE.md pointing one way:
// the engine knows no storage, transport, Badger, HTTP or MQTT; storage and
// the in-memory store know no engine, only its store contract; storage knows
// no transport; engine/job and engine/store are leaves; the transports share
// only the wire format; the governor does not drive the engine itself; the
// binary carries no test FS. Each rule says why.
func TestDependencyDirection(t *testing.T) {
	const mod = "github.com/edgeq/edgeq/"
	rules := []struct {
		pkg       string
		direct    bool // check only direct imports (Badger itself pulls in net/http via expvar)
		forbidden []string
		allowed   []string // exceptions to forbidden
		why       string
	}{
		{"engine", false, []string{mod + "storage", mod + "transport", mod + "resource", mod + "engine/handler", "github.com/dgraph-io/badger", "net/http", "github.com/eclipse/paho.mqtt.golang", "github.com/prometheus"}, nil,
			"the engine declares the store and handler contracts and is driven by the daemon; it runs and is tested with no backend, transport or governor"},
		{"engine/job", false, []string{mod + "engine", "github.com/"}, nil,
			"the leaf of shared types and sentinels that every package imports; an import back would be a cycle"},
		{"engine/ring", false, []string{mod, "github.com/"}, nil,
			"the lock-free ring is a generic data structure, tested and benchmarked alone"},
		{"engine/store", false, []string{mod, "github.com/"}, []string{mod + "engine/job"},
			"the store contract is the leaf that the engine, every store and the conformance suite import; an import of either side would make the arrows meet"},
		{"storage", true, []string{mod + "engine", mod + "transport", mod + "resource", "net/http", "github.com/eclipse/paho.mqtt.golang"}, []string{mod + "engine/job", mod + "engine/store"},
			"storage is the Badger backend of the store contract (engine/store); it knows no engine, protocol or governor, so the engine's changes do not reach it and it is tested without one"},
		{"engine/memstore", false, []string{mod + "engine", "github.com/"}, []string{mod + "engine/job", mod + "engine/store"},
			"the in-memory store implements the store contract (engine/store) like storage does; importing the engine would let it lean on the engine's internals, and the engine's tests import it"},
		{"engine/storetest", false, []string{mod + "engine", mod + "storage", "github.com/"}, []string{mod + "engine/job", mod + "engine/store"},
			"the conformance suite tests the store contract (engine/store) and no particular store or engine"},
		{"engine/schedule", false, []string{mod + "storage", mod + "transport", mod + "resource", "github.com/dgraph-io/badger", "net/http", "github.com/eclipse/paho.mqtt.golang", "github.com/prometheus"}, nil,
			"the scheduler fires through the engine's calls and stores through the engine's one writer; it knows no store, transport or governor"},
		{"transport/httpapi", false, []string{mod + "storage", "github.com/dgraph-io/badger", "github.com/eclipse/paho.mqtt.golang"}, nil,
			"the HTTP API speaks to the engine through the interfaces it declares, never to the store or MQTT"},
		{"transport/native", false, []string{mod + "storage", mod + "transport/mqttapi", "github.com/dgraph-io/badger", "github.com/eclipse/paho.mqtt.golang"}, nil,
			"the native protocol speaks to the engine through the interface it declares and shares only the HTTP API's error table and client types"},
		{"transport/mqttapi", false, []string{mod + "transport/httpapi", "github.com/prometheus"}, nil,
			"MQTT ingest shares only the wire format (transport/wire) with HTTP; net/http's server and Prometheus do not belong in it"},
		{"transport/wire", false, []string{"net/http", mod + "engine", mod + "storage", mod + "transport/", "github.com/"}, []string{mod + "engine/job"},
			"the wire format is a leaf both transports import: it must not pull in HTTP, the engine or either transport"},
		{"resource", false, []string{mod + "engine", mod + "transport", mod + "storage"}, []string{mod + "engine/job"},
			"the governor only measures and decides a level; the daemon hands it to the engine, so the engine can be tested without a governor and the other way round"},
		{"client", false, []string{mod + "storage", "github.com/dgraph-io/badger", mod + "internal/"}, nil,
			"a program that only talks to the daemon links no store and no daemon internals"},
		{".", false, []string{mod + "internal/crashfs", "github.com/hanwen/go-fuse"}, nil,
			"the crash-simulating file system is for tests: the binary must not grow by it"},
		{".", false, []string{"github.com/nats-io/nats-server"}, nil,
			"the in-process JetStream server is what the uplink tests publish to: the binary only speaks to one (nats.go)"},
		{".", false, []string{"github.com/chromedp"}, nil,
			"chromedp drives a browser in the status page's tests: the page itself is one embedded file"},
		{".", false, []string{"github.com/mochi-mqtt/server"}, nil,
			"the in-process MQTT broker is what the mqtt transport and uplink tests publish to: the binary only speaks to one (paho)"},
		{"transport/uplink", false, []string{mod + "storage", mod + "transport/httpapi", mod + "transport/mqttapi", "github.com/dgraph-io/badger", "github.com/nats-io/nats-server", "github.com/mochi-mqtt/server"}, nil,
			"an uplink is a handler over the engine's contract and its own client; it knows no store, no other transport and no server"},
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
				if slices.Contains(r.allowed, dep) {
					continue
				}
				for _, f := range r.forbidden {
					if dep == f || strings.HasPrefix(dep, f+"/") || (strings.HasSuffix(f, "/") && strings.HasPrefix(dep, f)) {
						t.Errorf("%s imports %s (forbidden: %s): %s", r.pkg, dep, f, r.why)
					}
				}
			}
		})
	}
}
