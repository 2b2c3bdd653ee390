package daemon

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgeq/edgeq/engine"
	"github.com/edgeq/edgeq/engine/job"
	"github.com/edgeq/edgeq/resource"
	"github.com/edgeq/edgeq/transport/httpapi"
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

// newGovernor builds the governor of rc, sampling the host with the Linux
// sampler (the store's directory and the root file system), the engine's
// usage and symptoms, and the bytes the transports hold in their bounded
// buffers (transient).
func newGovernor(rc resource.Config, dataDir string, goMemDerived bool, eng *engine.Engine, transient func() uint64) (*governorLink, error) {
	sampler := resource.NewLinuxSampler(dataDir, "/")
	if goMemDerived {
		sampler.IgnoreGoMemory()
	}
	g, err := resource.New(rc, sampler, func() resource.Usage {
		running, limit := eng.Workers()
		s := eng.Symptoms()
		return resource.Usage{Running: running, Limit: limit, CommitP99: s.CommitP99, WaitP99: s.WaitP99, Transient: transient()}
	})
	if err != nil {
		return nil, err
	}
	return &governorLink{gov: g, eng: eng, interval: max(rc.Interval, 100*time.Millisecond)}, nil
}

// apply hands the current level and worker limit to the engine.
func (l *governorLink) apply() {
	l.eng.SetLevel(l.gov.Level())
	limit, reserved := l.gov.Concurrency()
	l.eng.SetWorkers(limit, reserved)
}

// run runs the governor until ctx ends, applying each level change at once
// and the worker limit (which moves without level changes) every interval.
// It returns once the governor's own loop has returned.
func (l *governorLink) run(ctx context.Context) error {
	cancel := l.gov.Subscribe(func(resource.Event) {
		l.changes.Add(1)
		l.apply()
	})
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	done := make(chan error, 1)
	wg.Go(func() { done <- l.gov.Run(ctx) })
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
func (l *governorLink) Status() resource.Status { return l.gov.Status() }

// LevelChanges implements httpapi.Governor.
func (l *governorLink) LevelChanges() uint64 { return l.changes.Load() }

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
