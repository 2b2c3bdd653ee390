package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestMQTTReconnectLogged: on the real binary, a broker restart logs the
// loss of the connection and then the reconnection, and the reconnection
// is counted in /metrics.
func TestMQTTReconnectLogged(t *testing.T) {
	addr := freePort(t)
	stopBroker := startMochiAt(t, addr)
	dir := t.TempDir()
	conf := filepath.Join(dir, "edgeq.yaml")
	os.WriteFile(conf, []byte("mqtt: {broker: tcp://"+addr+", client_id: edgeq-reconnect}\n"), 0o600)
	d := startDaemon(t, filepath.Join(dir, "data"), "--config", conf)

	waitMetric := func(series string, want float64) {
		t.Helper()
		for deadline := time.Now().Add(30 * time.Second); ; {
			if scrape(t, d.base)[series] == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s never became %v:\n%s", series, want, d.log)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	waitMetric("edgeq_mqtt_connected", 1)
	stopBroker()
	waitMetric("edgeq_mqtt_connected", 0)
	startMochiAt(t, addr)
	waitMetric("edgeq_mqtt_reconnects_total", 1)
	waitMetric("edgeq_mqtt_connected", 1)

	log := d.log.String()
	lost := strings.Index(log, "mqtt connection lost")
	back := strings.Index(log, "mqtt reconnected")
	if lost < 0 || back < lost {
		t.Errorf("want a \"mqtt connection lost\" line, then a \"mqtt reconnected\" line:\n%s", log)
	}
	if back >= 0 && !strings.Contains(log[back:], "down=") {
		t.Errorf("the reconnection line does not say how long the connection was down:\n%s", log[back:])
	}
}
