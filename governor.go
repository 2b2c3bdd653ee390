package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/edgeq/edgeq/engine"
	httphandler "github.com/edgeq/edgeq/engine/handler/http"
	"github.com/edgeq/edgeq/engine/job"
	"github.com/edgeq/edgeq/resource"
	"github.com/edgeq/edgeq/transport/httpapi"
	"github.com/edgeq/edgeq/transport/mqttapi"
)

// governorLink applies the governor's decisions to the engine and serves
// the HTTP API's view of the governor. Safe for concurrent use.
type governorLink struct {
	gov      *resource.Governor
	eng      *engine.Engine
	interval time.Duration
	changes  atomic.Uint64
}

var _ httpapi.Governor = (*governorLink)(nil)

// newGovernor builds the governor from the validated config, sampling the
// host with the Linux sampler, the engine's usage and symptoms, and the
// bytes the transports hold in their bounded buffers (transient).
func newGovernor(cfg *Config, eng *engine.Engine, transient func() uint64, log *slog.Logger) (*governorLink, error) {
	rc := cfg.resourceConfig(log)
	g, err := resource.New(rc, resource.NewLinuxSampler(cfg.DataDir, "/"), func() resource.Usage {
		running, limit := eng.Workers()
		s := eng.Symptoms()
		return resource.Usage{Running: running, Limit: limit, CommitP99: s.CommitP99, WaitP99: s.WaitP99, Transient: transient()}
	})
	if err != nil {
		return nil, err
	}
	return &governorLink{gov: g, eng: eng, interval: max(rc.Interval, 100*time.Millisecond)}, nil
}

// resourceConfig maps the governor block of the config file.
func (c *Config) resourceConfig(log *slog.Logger) resource.Config {
	g := c.Governor
	return resource.Config{
		Interval:       time.Duration(g.Interval),
		Dwell:          time.Duration(g.Dwell),
		CPU:            resource.Thresholds{Enter: g.CPU.Enter, Exit: g.CPU.Exit},
		Memory:         resource.Thresholds{Enter: g.Memory.Enter, Exit: g.Memory.Exit},
		DiskMinFree:    uint64(g.DiskMinFree),
		MinConcurrency: g.Concurrency.Min,
		MaxConcurrency: g.Concurrency.Max,
		Logger:         log,
	}
}

// apply hands the current level and worker limit to the engine.
func (l *governorLink) apply() {
	l.eng.SetLevel(l.gov.Level())
	limit, reserved := l.gov.Concurrency()
	l.eng.SetWorkers(limit, reserved)
}

// run runs the governor until ctx ends, applying each level change at once
// and the worker limit (which moves without level changes) every interval.
func (l *governorLink) run(ctx context.Context) error {
	cancel := l.gov.Subscribe(func(resource.Event) {
		l.changes.Add(1)
		l.apply()
	})
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- l.gov.Run(ctx) }()
	t := time.NewTicker(l.interval)
	defer t.Stop()
	for {
		select {
		case err := <-done:
			return err
		case <-t.C:
			l.apply()
		}
	}
}

// Status implements httpapi.Governor.
func (l *governorLink) Status() ([]byte, error) { return json.Marshal(l.gov.Status()) }

// Drill implements httpapi.Governor; the engine sheds at once.
func (l *governorLink) Drill(level job.Level, d time.Duration) error {
	err := l.gov.Drill(level, d)
	l.apply()
	return err
}

// ClearDrill implements httpapi.Governor.
func (l *governorLink) ClearDrill() {
	l.gov.ClearDrill()
	l.apply()
}

// Gauges implements httpapi.Governor.
func (l *governorLink) Gauges() httpapi.GovernorGauges {
	st := l.gov.Status()
	s := st.Sample
	return httpapi.GovernorGauges{
		Level:        st.Level,
		Concurrency:  st.Concurrency,
		LevelChanges: l.changes.Load(),
		CPUPercent:   s.CPUBusy,
		CPUKnown:     s.Known.Has(resource.SignalCPU),
		MemPercent:   s.MemPercent(),
		MemKnown:     s.Known.Has(resource.SignalMemory),
		DiskFree:     s.DiskFree,
		DiskKnown:    s.Known.Has(resource.SignalDisk),
	}
}

// buildHandlers creates the in-process handler of every queue that has one
// and sets it in ec. It answers a function that releases their resources.
func buildHandlers(cfg *Config, ec *engine.Config) (release func(), err error) {
	var idle []func()
	release = func() {
		for _, f := range idle {
			f()
		}
	}
	for name, q := range cfg.Queues {
		if q.Handler == nil {
			continue
		}
		h := q.Handler
		var handler engine.Handler
		switch h.Type {
		case "exec":
			x, err := newExecHandler(h)
			if err != nil {
				return release, fmt.Errorf("queues.%s.handler.%w", name, err)
			}
			handler = x
		case "http":
			x, err := httphandler.New(httphandler.Config{URL: h.URL, Headers: h.Headers, Timeout: time.Duration(h.Timeout)})
			if err != nil {
				return release, fmt.Errorf("queues.%s.handler.%w", name, err)
			}
			idle = append(idle, x.CloseIdleConnections)
			handler = x
		case "mqtt":
			// Bound to the MQTT client once it starts (runDaemon); until
			// then its jobs are retried as target failures.
			handler = mqttapi.NewHandler(h.Topic, time.Duration(h.Timeout))
		default:
			continue // Validate refuses other types
		}
		qc := ec.Queues[name]
		qc.Handler = handler
		ec.Queues[name] = qc
	}
	return release, nil
}
