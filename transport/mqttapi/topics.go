package mqttapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/edgeq/edgeq/engine/job"
	"github.com/edgeq/edgeq/transport/wire"
)

// unrouted is the queue segment of the notice topic for messages that name
// no valid queue. It cannot collide with a queue: names start with [a-z0-9].
const unrouted = "_unrouted"

// topicQueue parses {prefix}/jobs/{queue} and {prefix}/submit/{queue}. ok is
// false for any other topic; queue is then "". The queue is returned as
// written: the caller checks its name.
func topicQueue(prefix, topic string) (queue string, submit, ok bool) {
	rest, found := strings.CutPrefix(topic, prefix+"/")
	if !found || prefix == "" {
		return "", false, false
	}
	kind, queue, found := strings.Cut(rest, "/")
	if !found || queue == "" || strings.Contains(queue, "/") {
		return "", false, false
	}
	switch kind {
	case "jobs":
		return queue, false, true
	case "submit":
		return queue, true, true
	}
	return "", false, false
}

// ownTopic reports whether edgeq itself publishes to topic: such messages
// are never taken as jobs (a route filter like "#" would otherwise loop).
func ownTopic(prefix, topic string) bool {
	rest, found := strings.CutPrefix(topic, prefix+"/")
	if !found {
		return false
	}
	kind, _, _ := strings.Cut(rest, "/")
	switch kind {
	case "rejected", "events", "alerts", "status":
		return true
	}
	return false
}

// matchFilter reports whether topic matches an MQTT 3.1.1 topic filter:
// '+' matches one level, a final '#' the parent and every level below, and
// wildcards at the first level do not match topics starting with '$'.
func matchFilter(filter, topic string) bool {
	if strings.HasPrefix(topic, "$") && (strings.HasPrefix(filter, "+") || strings.HasPrefix(filter, "#")) {
		return false
	}
	for {
		f, frest, fmore := strings.Cut(filter, "/")
		if f == "#" {
			return !fmore
		}
		t, trest, tmore := strings.Cut(topic, "/")
		if f != "+" && f != t {
			return false
		}
		if !fmore || !tmore {
			if !fmore && !tmore {
				return true
			}
			// "a/#" matches "a".
			return !tmore && frest == "#"
		}
		filter, topic = frest, trest
	}
}

// keyFrom takes an idempotency key from the top-level field of a JSON
// object payload: a string as is, a number by its text. Anything else (not
// an object, no such field, another type) gives "".
func keyFrom(payload []byte, field string) string {
	if field == "" {
		return ""
	}
	p := bytes.TrimLeft(payload, " \t\r\n")
	if len(p) == 0 || p[0] != '{' {
		return ""
	}
	var m map[string]json.RawMessage
	if json.Unmarshal(payload, &m) != nil {
		return ""
	}
	v, ok := m[field]
	if !ok || len(v) == 0 {
		return ""
	}
	switch v[0] {
	case '"':
		var s string
		if json.Unmarshal(v, &s) != nil {
			return ""
		}
		return s
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
		return string(v)
	}
	return ""
}

// decodeEnvelope decodes the payload of {prefix}/submit/{queue}: one JSON
// object like a line of an HTTP batch enqueue (wire.BatchLine), options
// included. Errors wrap job.ErrInvalidArgument.
func decodeEnvelope(queue string, data []byte) (job.New, error) {
	var l wire.BatchLine
	if err := json.Unmarshal(data, &l); err != nil {
		if !errors.Is(err, job.ErrInvalidArgument) {
			err = fmt.Errorf("%w: %v", job.ErrInvalidArgument, err)
		}
		return job.New{}, err
	}
	return l.ToNew(queue), nil
}
