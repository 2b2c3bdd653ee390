package daemon

import (
	"context"
	"log/slog"
	"time"

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
