package daemon

import (
	"cmp"
	"fmt"

	"github.com/edgeq/edgeq/engine"
	exechandler "github.com/edgeq/edgeq/engine/handler/exec"
	httphandler "github.com/edgeq/edgeq/engine/handler/http"
	"github.com/edgeq/edgeq/transport/mqttapi"
	"github.com/edgeq/edgeq/transport/uplink"
)

// buildHandlers creates the in-process handler of every queue in handlers
// and sets it in queues. It answers a function that releases their
// resources, also when it fails. An MQTT handler is bound to mc, unless mc
// is nil: until it is bound its jobs are retried as target failures. An
// uplink handler sends through its uplink among uplinks.
func buildHandlers(handlers map[string]Handler, queues map[string]engine.QueueConfig, mc *mqttapi.Client, uplinks map[string]*uplink.Uplink) (release func(), err error) {
	var idle []func()
	release = func() {
		for _, f := range idle {
			f()
		}
	}
	for name, h := range handlers {
		// A handler's result is kept by a queue that retains done jobs and
		// is the payload of a job's on_success follow-up: one byte past
		// max_result, so that the engine sees it was cut.
		result := cmp.Or(queues[name].MaxResult, engine.DefaultMaxResult) + 1
		var handler engine.Handler
		switch h.Type {
		case "exec":
			x, err := exechandler.New(exechandler.Config{Command: h.Command, Timeout: h.Timeout, Result: result})
			if err != nil {
				return release, fmt.Errorf("queues.%s.handler.%w", name, err)
			}
			handler = x
		case "http":
			x, err := httphandler.New(httphandler.Config{URL: h.URL, Headers: h.Headers, Timeout: h.Timeout, Result: int64(result)})
			if err != nil {
				return release, fmt.Errorf("queues.%s.handler.%w", name, err)
			}
			idle = append(idle, x.CloseIdleConnections)
			handler = x
		case "mqtt":
			x := mqttapi.NewHandler(h.Topic, h.Timeout)
			if mc != nil {
				x.Bind(mc)
			}
			handler = x
		case "uplink":
			u, ok := uplinks[h.Uplink]
			if !ok {
				return release, fmt.Errorf("queues.%s.handler.uplink: %q is not a running uplink (a reload cannot add one: restart)", name, h.Uplink)
			}
			handler = u.QueueHandler(queues[name].Class, queues[name].Ordered)
		default:
			return release, fmt.Errorf("queues.%s.handler.type: unknown type %q", name, h.Type)
		}
		qc := queues[name]
		qc.Handler = handler
		queues[name] = qc
	}
	return release, nil
}

// bindMQTT binds the MQTT handlers among queues to mc.
func bindMQTT(queues map[string]engine.QueueConfig, mc *mqttapi.Client) {
	for _, q := range queues {
		if h, ok := q.Handler.(*mqttapi.Handler); ok {
			h.Bind(mc)
		}
	}
}
