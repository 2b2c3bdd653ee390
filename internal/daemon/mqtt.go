package daemon

import (
	"sync/atomic"

	"github.com/edgeq/edgeq/engine"
	"github.com/edgeq/edgeq/transport/httpapi"
	"github.com/edgeq/edgeq/transport/mqttapi"
)

// mqttLink is the MQTT client once it started; nil before and while MQTT is
// off, when job events, alerts and level changes go nowhere. Safe for
// concurrent use.
type mqttLink struct {
	c atomic.Pointer[mqttapi.Client]
}

func (m *mqttLink) onEvent(ev engine.Event) {
	if c := m.c.Load(); c != nil {
		c.OnEvent(ev)
	}
}

func (m *mqttLink) onAlert(a engine.Alert) {
	if c := m.c.Load(); c != nil {
		c.OnAlert(a)
	}
}

// inHand is the bytes the MQTT client holds in its bounded buffer.
func (m *mqttLink) inHand() uint64 {
	if c := m.c.Load(); c != nil {
		return uint64(c.InHandBytes())
	}
	return 0
}

// metrics reads the MQTT client's counters for /metrics; nothing while
// MQTT is off or not started yet.
func (m *mqttLink) metrics() (httpapi.MQTTStats, bool) {
	c := m.c.Load()
	if c == nil {
		return httpapi.MQTTStats{}, false
	}
	s := c.Stats()
	return httpapi.MQTTStats{
		Connected:  s.Connected,
		Received:   s.Received,
		Acked:      s.Acked,
		Rejected:   s.Rejected,
		Dropped:    s.Dropped,
		Reconnects: s.Reconnects,
		InHand:     s.InHand,
	}, true
}
