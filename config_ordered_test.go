package main

import "testing"

// TestQueueOrdered: a queue an uplink drains is ordered unless it says
// ordered: false; any other queue is ordered only when it says so.
func TestQueueOrdered(t *testing.T) {
	const data = `
uplinks:
  cloud: {type: http, url: "https://collector.example/in"}
queues:
  events: {handler: {type: uplink, uplink: cloud}}
  telemetry: {ordered: false, handler: {type: uplink, uplink: cloud}}
  jobs: {}
  commands: {ordered: true}
  hooks: {handler: {type: http, url: "https://hooks.example/in"}}
`
	cfg, _, err := decodeConfig([]byte(data))
	if err == nil {
		err = cfg.Validate()
	}
	if err != nil {
		t.Fatal(err)
	}
	ec := cfg.engineConfig(nil)
	for q, want := range map[string]bool{"events": true, "telemetry": false, "jobs": false, "commands": true, "hooks": false} {
		if got := ec.Queues[q].Ordered; got != want {
			t.Errorf("queues.%s: ordered %v, want %v", q, got, want)
		}
	}
}
