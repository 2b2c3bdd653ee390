package main

import (
	"fmt"
	"log/slog"
	"reflect"
	"strings"

	"github.com/edgeq/edgeq/engine"
	"github.com/edgeq/edgeq/transport/mqttapi"
)

// reloadConfig re-reads the configuration file (SIGHUP), lays the flags and
// variables of the start over it, and applies what can change while the
// daemon runs: the queues (classes, caps, reserves, rates, depths, sync
// modes, alerts, shedding, handlers, breakers) and the governor's
// thresholds, dwell and concurrency bounds. The other keys need a restart:
// it answers those whose value differs from the running one, for the log.
// Jobs, leases and connections are untouched. A file that does not load or
// validate is refused and the running configuration stays. On success it
// answers the function that releases the previous handlers' resources.
func reloadConfig(s serveSettings, eng *engine.Engine, gov *governorLink, log *slog.Logger, mc *mqttapi.Client) (release func(), restart []string, err error) {
	if s.path == "" {
		return nil, nil, fmt.Errorf("no configuration file to reload (serve was started without --config)")
	}
	cfg, lines, err := readConfig(s.path)
	if cfg == nil {
		return nil, nil, err
	}
	sources, oerr := s.overlay(cfg)
	if oerr != nil {
		return nil, nil, oerr
	}
	if err := annotate(joinProblems(err, cfg.Validate()), s.path, lines, sources); err != nil {
		return nil, nil, err
	}
	ec := cfg.engineConfig(log)
	release, err = buildHandlers(cfg, &ec)
	if err != nil {
		release()
		return nil, nil, err
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
		return nil, nil, err
	}
	if err := eng.Reconfigure(ec.Queues); err != nil {
		release()
		return nil, nil, err
	}
	gov.apply()
	return release, restartKeys(s.cfg, cfg), nil
}

// reloadable are the keys a reload applies (reloadConfig); a key under one
// of them is reloadable too.
var reloadable = []string{
	"queues",
	"governor.dwell", "governor.cpu", "governor.memory", "governor.disk_min_free", "governor.concurrency",
}

// restartKeys lists, in file order, the keys outside reloadable whose value
// in next differs from running: a reload leaves them as they are.
func restartKeys(running, next *Config) []string {
	var keys []string
	var walk func(a, b reflect.Value, path string)
	walk = func(a, b reflect.Value, path string) {
		for _, r := range reloadable {
			if path == r || strings.HasPrefix(path, r+".") {
				return
			}
		}
		switch {
		case a.Kind() == reflect.Struct:
			for i := range a.NumField() {
				name, _, _ := strings.Cut(a.Type().Field(i).Tag.Get("yaml"), ",")
				if path != "" {
					name = path + "." + name
				}
				walk(a.Field(i), b.Field(i), name)
			}
		case (a.Kind() == reflect.Slice || a.Kind() == reflect.Map) && a.Len() == 0 && b.Len() == 0:
			// nil and empty are the same setting
		case !reflect.DeepEqual(a.Interface(), b.Interface()):
			keys = append(keys, path)
		}
	}
	walk(reflect.ValueOf(*running), reflect.ValueOf(*next), "")
	return keys
}
