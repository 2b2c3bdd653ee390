package daemon

import (
	"context"
	"log/slog"
	"maps"
	"slices"
	"time"

	"github.com/edgeq/edgeq/transport/httpapi"
	"github.com/edgeq/edgeq/transport/uplink"
)

// watchUplinks logs an alert, once, when an uplink has been down longer
// than its alert_after, and once more when it is back, until ctx ends.
func watchUplinks(ctx context.Context, log *slog.Logger, uplinks map[string]*uplink.Uplink) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			for _, u := range uplinks {
				if raised, changed := u.CheckAlert(now); changed && raised {
					log.Warn("uplink alert raised", "uplink", u.Name(), "down_for", u.DownFor(now).Round(time.Second))
				} else if changed {
					log.Info("uplink alert cleared", "uplink", u.Name())
				}
			}
		}
	}
}

// uplinkQueues maps each uplink to the queues whose handler sends through
// it, sorted.
func uplinkQueues(handlers map[string]Handler) *map[string][]string {
	m := map[string][]string{}
	for q, h := range handlers {
		if h.Type == "uplink" {
			m[h.Uplink] = append(m[h.Uplink], q)
		}
	}
	for _, qs := range m {
		slices.Sort(qs)
	}
	return &m
}

// uplinkStats answers the uplinks' stats with their queues' backlog, for
// the HTTP API. Safe for concurrent use.
func (d *Daemon) uplinkStats() []httpapi.UplinkStats {
	now := time.Now()
	queues := *d.uplinkQueues.Load()
	var out []httpapi.UplinkStats
	for _, name := range slices.Sorted(maps.Keys(d.uplinks)) {
		u := d.uplinks[name]
		st := u.Stats()
		w := httpapi.UplinkStats{
			Name: name, Type: st.Type, Connected: st.Connected, DownForS: u.DownFor(now).Seconds(),
			Alerting: st.Alerting, Queues: queues[name],
			JobsSent: st.JobsSent, BytesSent: st.BytesSent, JobsFailed: st.JobsFailed, Reconnects: st.Reconnects,
			Compression: st.Compression, Batches: st.Batches, BatchBuckets: st.BatchBuckets, BatchSizes: st.BatchSizes,
			Rate: st.Rate, MaxRate: st.MaxRate, Bandwidth: st.Bandwidth, MaxBandwidth: st.MaxBandwidth,
		}
		if w.Queues == nil {
			w.Queues = []string{}
		}
		if !st.LastSuccess.IsZero() {
			w.LastSuccess = st.LastSuccess.UTC().Format(time.RFC3339Nano)
		}
		var bytes int64
		known := true
		for _, q := range w.Queues {
			qs, err := d.eng.QueueStats(q)
			if err != nil {
				continue
			}
			w.BacklogJobs += qs.Ready + qs.Delayed + qs.Leased
			bytes += qs.Bytes
			known = known && !qs.BytesUnknown
			w.OldestAgeS = max(w.OldestAgeS, qs.OldestReadyAge.Seconds())
		}
		if known {
			w.BacklogBytes = &bytes
		}
		out = append(out, w)
	}
	return out
}
