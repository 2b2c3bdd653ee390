package daemon

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/edgeq/edgeq/storage"
)

// stop stops what start started, in the order of STYLE.md: MQTT ingest
// first (what is in hand is committed and acked, the rest stays with the
// broker for the next session), then the HTTP API, the engine and the
// store (shutdown), the uplinks, then the background goroutines, which it waits for,
// and last the handlers' resources.
func (d *Daemon) stop() error {
	if d.mc != nil {
		ctx, cancel := context.WithTimeout(context.Background(), min(10*time.Second, d.cfg.ShutdownTimeout))
		if err := d.mc.Stop(ctx); err != nil {
			d.log.Warn("mqtt stop", "err", err)
		}
		cancel()
	}
	d.stopSchedules()
	err := d.shutdown()
	// After the engine: its running jobs wait on their uplink until then.
	for _, u := range d.uplinks {
		u.Stop()
	}
	if d.stopLevels != nil {
		d.stopLevels()
	}
	d.cancelBG()
	d.group.Wait()
	if d.release != nil {
		d.release()
	}
	return err
}

// shutdown stops ingest first (the native protocol and then the HTTP
// server answer shutting_down to new requests and let those in flight
// finish), then the engine
// (dispatch stops, running jobs get the rest of shutdown_timeout, the ring
// is flushed and synced), then the store. The store stays open when the
// engine did not stop: its goroutines may still write, and the store
// recovers at the next start anyway.
func (d *Daemon) shutdown() error {
	if d.store == nil {
		return nil
	}
	if d.eng == nil {
		return closeStore(d.store)
	}
	ctx, cancel := context.WithTimeout(context.Background(), d.cfg.ShutdownTimeout)
	defer cancel()
	var errs []error
	if d.nsrv != nil {
		if err := d.nsrv.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop native protocol: %w", err))
		}
	}
	if d.srv != nil {
		if err := d.srv.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("stop http api: %w", err))
		}
	}
	engErr := d.eng.Stop(ctx)
	if engErr != nil {
		errs = append(errs, fmt.Errorf("stop engine: %w", engErr))
		d.log.Warn("store left open because the engine did not stop", "err", engErr)
	} else {
		errs = append(errs, d.closeStoreWithin(ctx))
	}
	return errors.Join(errs...)
}

func closeStore(store *storage.Badger) error {
	if err := store.Close(); err != nil {
		return fmt.Errorf("close store: %w", err)
	}
	return nil
}

// closeStoreWithin closes the store within what is left of shutdown_timeout.
// Badger retries a failing memtable flush (a vanished directory, EIO, a
// full disk) once a second for as long as it fails, so a close that has not
// returned by then is abandoned: its goroutine, the one the daemon does not
// wait for, is left behind as the process exits non-zero, and the next
// start replays the memtable's WAL, which the engine's last sync made
// durable.
func (d *Daemon) closeStoreWithin(ctx context.Context) error {
	done := make(chan error, 1)
	go func() { done <- closeStore(d.store) }() // abandoned, with the process, if it hangs
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		d.log.Error("store close abandoned at shutdown_timeout: Badger's memtable flush is still failing; the next start recovers the jobs from its WAL",
			"dir", d.cfg.DataDir, "timeout", d.cfg.ShutdownTimeout)
		return fmt.Errorf("close store %s: abandoned after shutdown_timeout %s", d.cfg.DataDir, d.cfg.ShutdownTimeout)
	}
}
