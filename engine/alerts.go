package engine

import (
	"sort"
	"time"
)

// alertInterval is how often backlog alerts are evaluated.
const alertInterval = time.Second

// alertLoop evaluates backlog alerts until stop is closed.
func (e *Engine) alertLoop(stop <-chan struct{}) {
	t := time.NewTicker(alertInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			e.checkAlerts()
		case <-stop:
			return
		}
	}
}

// checkAlerts raises or clears each queue's backlog alert. Every change is
// logged once (WARN when raised), counted and handed to Config.OnAlert.
func (e *Engine) checkAlerts() {
	now := time.Now()
	e.qmu.RLock()
	var qs []*queue
	for _, q := range e.queues {
		if q.conf().AlertAge > 0 || q.conf().AlertDepth > 0 {
			qs = append(qs, q)
		}
	}
	e.qmu.RUnlock()
	if len(qs) == 0 {
		return
	}
	heads := e.heads(qs)
	for i, q := range qs {
		var age time.Duration
		if !heads[i].IsZero() && q.ready.Load() > 0 {
			age = max(0, now.Sub(heads[i]))
		}
		depth := q.depth()
		kind := ""
		switch {
		case q.conf().AlertAge > 0 && age > q.conf().AlertAge:
			kind = "age"
		case q.conf().AlertDepth > 0 && depth > q.conf().AlertDepth:
			kind = "depth"
		}
		raised := kind != ""
		if raised == q.alerting.Load() {
			continue
		}
		q.alerting.Store(raised)
		a := Alert{Queue: q.name, Raised: raised, Kind: kind, Age: age, Depth: depth, At: now}
		if raised {
			q.alerts.Add(1)
			e.log.Warn("backlog alert", "queue", q.name, "kind", kind, "oldest_age", age.Round(time.Second),
				"depth", depth, "alert_age", q.conf().AlertAge, "alert_depth", q.conf().AlertDepth)
		} else {
			e.log.Info("backlog alert cleared", "queue", q.name, "oldest_age", age.Round(time.Second), "depth", depth)
		}
		if e.cfg.OnAlert != nil {
			e.cfg.OnAlert(a)
		}
	}
}

// Alerting lists the queues whose backlog alert is raised, sorted.
func (e *Engine) Alerting() []string {
	e.qmu.RLock()
	defer e.qmu.RUnlock()
	var out []string
	for _, q := range e.queues {
		if q.alerting.Load() {
			out = append(out, q.name)
		}
	}
	sort.Strings(out)
	return out
}
