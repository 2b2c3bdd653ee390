package main

import (
	"context"
	"errors"
	"log/slog"
	"os"
	"reflect"
	"strings"

	"github.com/edgeq/edgeq/internal/daemon"
)

// reloadOnHUP reloads the configuration file at each signal on hup until
// ctx ends, and logs the outcome: a file that does not load or validate is
// refused and the running configuration stays.
func reloadOnHUP(ctx context.Context, d *daemon.Daemon, s serveSettings, hup <-chan os.Signal, log *slog.Logger) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
		}
		var restart []string
		err := d.Reload(ctx, func() (daemon.Config, error) {
			cfg, keys, err := reloadConfig(s, log)
			restart = keys
			return cfg, err
		})
		switch {
		case errors.Is(err, daemon.ErrStopped) || errors.Is(err, context.Canceled):
			return
		case err != nil:
			log.Error("reload refused; the running configuration stays", "file", s.path, "err", err)
			continue
		}
		log.Info("configuration reloaded", "file", s.path)
		for _, key := range restart {
			log.Warn("configuration change not applied: it needs a restart", "key", key, "file", s.path)
		}
	}
}

// reloadConfig re-reads the configuration file (SIGHUP), lays the flags and
// variables of the start over it and validates it, for daemon.Reload, which
// applies what can change while the daemon runs: the queues (classes, caps,
// reserves, rates, depths, sync modes, alerts, shedding, handlers,
// breakers), the schedules and the governor's thresholds, dwell and
// concurrency bounds.
// The other keys need a restart: it answers those whose value differs from
// the running one, for the log. Jobs, leases and connections are untouched.
func reloadConfig(s serveSettings, log *slog.Logger) (dc daemon.Config, restart []string, err error) {
	if s.path == "" {
		return dc, nil, errors.New("no configuration file to reload (serve was started without --config)")
	}
	cfg, lines, err := readConfig(s.path)
	if cfg == nil {
		return dc, nil, err
	}
	sources, oerr := s.overlay(cfg)
	if oerr != nil {
		return dc, nil, oerr
	}
	if err := annotate(joinProblems(err, cfg.Validate()), s.path, lines, sources); err != nil {
		return dc, nil, err
	}
	return cfg.daemonConfig(s.token, s.tokens, log), restartKeys(s.cfg, cfg), nil
}

// reloadable are the keys a reload applies (reloadConfig); a key under one
// of them is reloadable too.
var reloadable = []string{
	"queues", "schedules",
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
