package mqttapi

import (
	"sync"

	mqtt "github.com/eclipse/paho.mqtt.golang"
)

// msgBytes is what a message weighs against Config.InHandBytes.
func msgBytes(m mqtt.Message) int64 { return int64(len(m.Payload()) + len(m.Topic())) }

// inHand counts the bytes of messages taken from paho and not yet acked or
// held, against a limit (Config.InHandBytes). Safe for concurrent use.
type inHand struct {
	limit int64
	mu    sync.Mutex
	n     int64         // guarded by mu
	freed chan struct{} // guarded by mu; closed and replaced by give
}

// take waits until n more bytes fit (or nothing is in hand) and counts
// them; it reports false, counting nothing, when stop is closed first.
func (h *inHand) take(n int64, stop <-chan struct{}) bool {
	for {
		h.mu.Lock()
		if h.n == 0 || h.n+n <= h.limit {
			h.n += n
			h.mu.Unlock()
			return true
		}
		freed := h.freed
		h.mu.Unlock()
		select {
		case <-freed:
		case <-stop:
			return false
		}
	}
}

// give uncounts n bytes and wakes the waiting take.
func (h *inHand) give(n int64) {
	h.mu.Lock()
	h.n -= n
	close(h.freed)
	h.freed = make(chan struct{})
	h.mu.Unlock()
}

// bytes answers the bytes in hand now.
func (h *inHand) bytes() int64 {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.n
}
