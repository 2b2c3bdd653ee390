package main

import (
	"fmt"
	"log/slog"

	"github.com/edgeq/edgeq/engine"
	"github.com/edgeq/edgeq/transport/mqttapi"
)

// reloadConfig re-reads the configuration file (SIGHUP) and applies what
// can change while the daemon runs: the queues (classes, caps, reserves,
// rates, depths, sync modes, alerts, shedding, handlers, breakers) and the
// governor's thresholds, dwell and concurrency bounds. Listeners, the store,
// the MQTT connection and the other settings need a restart; jobs, leases
// and connections are untouched. A file that does not load or validate is
// refused with a log line and the running configuration stays. On success
// it answers the function that releases the previous handlers' resources.
func reloadConfig(path string, eng *engine.Engine, gov *governorLink, log *slog.Logger, mc *mqttapi.Client) (release func(), err error) {
	if path == "" {
		return nil, fmt.Errorf("no configuration file to reload (serve was started without --config)")
	}
	cfg, err := loadConfig(path)
	if err != nil {
		return nil, err
	}
	ec := cfg.engineConfig(log)
	release, err = buildHandlers(cfg, &ec)
	if err != nil {
		release()
		return nil, err
	}
	if mc != nil {
		for _, q := range ec.Queues {
			if h, ok := q.Handler.(*mqttapi.Handler); ok {
				h.Bind(mc)
			}
		}
	}
	if err := gov.gov.SetThresholds(cfg.resourceConfig(log)); err != nil {
		release()
		return nil, err
	}
	if err := eng.Reconfigure(ec.Queues); err != nil {
		release()
		return nil, err
	}
	gov.apply()
	return release, nil
}
