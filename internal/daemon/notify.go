package daemon

import (
	"context"
	"log/slog"
	"time"

	"github.com/coreos/go-systemd/v22/daemon"
)

// systemd's readiness and watchdog protocol (sd_notify(3)): one datagram per
// message to the unix socket in $NOTIFY_SOCKET (a leading '@' names the
// abstract namespace). Without $NOTIFY_SOCKET, outside systemd, every
// function here does nothing. systemd/edgeq.service uses Type=notify and
// WatchdogSec=30.

// heartbeatMaxAge is how old the engine's heartbeat may be while watchdog
// still pings. The committer goes round its loop at least once a minute when
// idle (engine.Engine.Heartbeat), so twice that leaves a slow fsync on an SD
// card its time; a store stuck longer stops the pings, and systemd kills
// (SIGABRT, with a goroutine dump in the journal) and restarts the daemon
// within heartbeatMaxAge + WatchdogSec of the last heartbeat.
const heartbeatMaxAge = 2 * time.Minute

// notifyReady tells systemd that the daemon is up: call it once the store is
// open, leases are requeued and the listeners are bound. systemd starts the
// watchdog clock then, and units ordered After=edgeq.service start.
func notifyReady(log *slog.Logger) { sdNotify(log, daemon.SdNotifyReady) }

// notifyStopping tells systemd that a clean shutdown has begun, so that the
// time it takes (up to shutdown_timeout) is not mistaken for a hang.
func notifyStopping(log *slog.Logger) { sdNotify(log, daemon.SdNotifyStopping) }

// notifyReloading tells systemd that a reload (SIGHUP, `systemctl reload
// edgeq`) has begun; call notifyReady when it is done, whether the new
// configuration was taken or refused.
func notifyReloading(log *slog.Logger) { sdNotify(log, daemon.SdNotifyReloading) }

func sdNotify(log *slog.Logger, state string) {
	if _, err := daemon.SdNotify(false, state); err != nil {
		log.Warn("systemd notify", "state", state, "err", err)
	}
}

// watchdog sends WATCHDOG=1 every half of systemd's watchdog interval
// ($WATCHDOG_USEC) while heartbeat() is at most heartbeatMaxAge old, until
// ctx ends. It returns at once when systemd asked for no watchdog. Start it
// after notifyReady: systemd arms the watchdog when start-up completes.
func watchdog(ctx context.Context, log *slog.Logger, heartbeat func() time.Time) {
	interval, err := daemon.SdWatchdogEnabled(false)
	if err != nil {
		log.Warn("systemd watchdog disabled", "err", err)
		return
	}
	if interval <= 0 {
		return
	}
	runWatchdog(ctx, log, interval/2, heartbeatMaxAge, heartbeat, func() error {
		_, err := daemon.SdNotify(false, daemon.SdNotifyWatchdog)
		return err
	})
}

// runWatchdog is watchdog's loop: every period it calls ping when
// heartbeat() is at most maxAge old, and logs when the heartbeat goes stale
// and when it comes back.
func runWatchdog(ctx context.Context, log *slog.Logger, period, maxAge time.Duration,
	heartbeat func() time.Time, ping func() error) {
	t := time.NewTicker(period)
	defer t.Stop()
	stale := false
	for {
		age := time.Since(heartbeat())
		switch {
		case age <= maxAge:
			if stale {
				log.Warn("engine heartbeat is back; watchdog pings resume", "age", age)
				stale = false
			}
			if err := ping(); err != nil {
				log.Warn("systemd watchdog ping", "err", err)
			}
		case !stale:
			log.Error("engine heartbeat is stale; withholding watchdog pings so systemd restarts the daemon",
				"age", age.Round(time.Second), "max_age", maxAge)
			stale = true
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
