package daemon

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/edgeq/edgeq/engine"
	"github.com/edgeq/edgeq/engine/schedule"
	"github.com/edgeq/edgeq/resource"
	"github.com/edgeq/edgeq/storage"
	"github.com/edgeq/edgeq/transport/httpapi"
	"github.com/edgeq/edgeq/transport/mqttapi"
	"github.com/edgeq/edgeq/transport/native"
	"github.com/edgeq/edgeq/transport/uplink"
)

// ErrStopped is Reload's answer once Run has returned.
var ErrStopped = errors.New("daemon stopped")

// errStoppedEarly is start's answer when ctx ended during recovery: a clean
// stop, not a failure.
var errStoppedEarly = errors.New("stopped during recovery")

// ConfigError is a configuration that the daemon refused as it started
// (a handler or the MQTT client could not be built from it): a restart
// with the same configuration fails the same way.
type ConfigError struct{ Err error }

func (e *ConfigError) Error() string { return e.Err.Error() }
func (e *ConfigError) Unwrap() error { return e.Err }

// Daemon runs edgeq: the store, the engine, the governor, the HTTP API,
// MQTT, the memory trimmer and systemd's notifications (doc.go).
type Daemon struct {
	cfg     Config
	log     *slog.Logger
	ran     atomic.Bool
	reloads chan reloadRequest
	stopped chan struct{} // closed when Run returns

	mqtt mqttLink

	// Set by start and read by Run's goroutine only (reload runs on it).
	release func() // releases the current handlers' resources
	store   *storage.Badger
	eng     *engine.Engine // nil until the engine started
	gov     *governorLink
	srv     *httpapi.Server
	nsrv    *native.Server  // nil while the native protocol is off
	mc      *mqttapi.Client // nil until MQTT started
	sched   *schedule.Scheduler
	// stopSched stops the scheduler; nil when it does not run.
	stopSched func()
	uplinks   map[string]*uplink.Uplink

	// uplinkQueues maps each uplink to the queues that send through it; set
	// by start and reload, read by the HTTP API's stats.
	uplinkQueues atomic.Pointer[map[string][]string]
	stopLevels   func()

	// group is every background goroutine (governor, trimmer, watchdog);
	// stop cancels bg and waits for the group.
	group    sync.WaitGroup
	bg       context.Context
	cancelBG context.CancelFunc
}

type reloadRequest struct {
	load func() (Config, error)
	done chan error
}

// New returns a daemon that runs cfg; Run starts it.
func New(cfg Config) (*Daemon, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("daemon: data directory: required")
	}
	cfg.Engine.Queues = maps.Clone(cfg.Engine.Queues)
	cfg.Handlers = maps.Clone(cfg.Handlers)
	d := &Daemon{
		cfg:     cfg,
		log:     cmp.Or(cfg.Logger, slog.New(slog.DiscardHandler)),
		reloads: make(chan reloadRequest),
		stopped: make(chan struct{}),
	}
	d.bg, d.cancelBG = context.WithCancel(context.Background())
	return d, nil
}

// Run starts the daemon, serves until ctx ends, and then stops in order:
// MQTT ingest, the HTTP API, the engine (flushing and syncing what it
// accepted), the store, then the background goroutines. It answers why
// it could not start or stop cleanly; a ctx that ends during recovery is a
// clean stop. Run may be called once.
func (d *Daemon) Run(ctx context.Context) error {
	if !d.ran.CompareAndSwap(false, true) {
		return errors.New("daemon: Run called twice")
	}
	defer close(d.stopped)
	if err := d.start(ctx); err != nil {
		if errors.Is(err, errStoppedEarly) {
			d.log.Info("stopped during recovery")
			return d.stop()
		}
		return errors.Join(err, d.stop())
	}
	d.serve(ctx)
	notifyStopping(d.log)
	d.log.Info("shutting down", "timeout", d.cfg.ShutdownTimeout)
	if err := d.stop(); err != nil {
		return err
	}
	d.log.Info("stopped")
	return nil
}

// Reload applies a configuration while Run serves: load, called on Run's
// goroutine between systemd's RELOADING=1 and READY=1, answers it, and
// its queues (Engine.Queues and Handlers), schedules and governor
// thresholds replace the running ones; its other fields are ignored. A
// load error or a refused configuration leaves the running one as it
// was. Reload waits
// for Run to serve and answers ErrStopped once Run has returned. Safe for
// concurrent use.
func (d *Daemon) Reload(ctx context.Context, load func() (Config, error)) error {
	r := reloadRequest{load: load, done: make(chan error, 1)}
	select {
	case d.reloads <- r:
		return <-r.done
	case <-d.stopped:
		return ErrStopped
	case <-ctx.Done():
		return ctx.Err()
	}
}

// serve answers reloads until ctx ends.
func (d *Daemon) serve(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case r := <-d.reloads:
			r.done <- d.reload(r.load)
		}
	}
}

// start builds the handlers, opens the store, recovers and starts the
// engine, then the governor and trimmer, the HTTP API and MQTT, and tells
// systemd the daemon is ready. What it started, stop stops.
func (d *Daemon) start(ctx context.Context) error {
	ec := d.cfg.Engine
	ec.Logger = d.log
	ec.OnEvent, ec.OnAlert = d.mqtt.onEvent, d.mqtt.onAlert
	var err error
	if err := d.startUplinks(ctx); err != nil {
		return err
	}
	if d.release, err = buildHandlers(d.cfg.Handlers, ec.Queues, nil, d.uplinks); err != nil {
		return &ConfigError{Err: err}
	}
	d.uplinkQueues.Store(uplinkQueues(d.cfg.Handlers))
	if err := d.startEngine(ctx, ec); err != nil {
		return err
	}
	rc := d.cfg.Governor
	rc.Logger = d.log
	if d.gov, err = newGovernor(rc, d.cfg.DataDir, d.cfg.GoMemoryDerived, d.eng, d.mqtt.inHand); err != nil {
		return fmt.Errorf("create governor: %w", err)
	}
	d.group.Go(func() { _ = d.gov.run(d.bg) })
	d.group.Go(func() {
		runTrimmer(d.bg, d.log, func() uint64 { return d.eng.Histograms().CommitBatchSize.Count })
	})
	if err := d.startSchedules(); err != nil {
		return err
	}
	hc := d.cfg.HTTP
	hc.Logger, hc.Governor, hc.MQTT, hc.Schedules = d.log, d.gov, d.mqtt.metrics, d.sched
	if len(d.uplinks) > 0 {
		hc.Uplinks = d.uplinkStats
	}
	srv, err := httpapi.New(hc, d.eng)
	if err == nil {
		err = srv.Start()
	}
	if err != nil {
		return fmt.Errorf("start http api: %w", err)
	}
	d.srv = srv
	if err := d.startNative(); err != nil {
		return err
	}
	if err := d.startMQTT(ctx, ec.Queues); err != nil {
		return err
	}
	d.log.Info("listening", "addr", srv.Addr().String(), "data_dir", d.cfg.DataDir,
		"sync", ec.Sync.String(), "auth", hc.Token != "" || len(hc.Tokens) > 0, "version", d.cfg.Version)
	// systemd: READY=1 only now (store open, leases requeued, listeners
	// bound); WATCHDOG=1 while the committer's heartbeat is recent, kept up
	// through the shutdown so a slow drain is not killed as hung.
	notifyReady(d.log)
	d.group.Go(func() { watchdog(d.bg, d.log, d.eng.Heartbeat) })
	return nil
}

// startNative starts the native protocol's listeners when configured.
func (d *Daemon) startNative() error {
	if d.cfg.Native == nil {
		return nil
	}
	nc := *d.cfg.Native
	nc.Logger = d.log
	srv, err := native.New(nc, d.eng)
	if err == nil {
		err = srv.Start()
	}
	if err != nil {
		return fmt.Errorf("start native protocol: %w", err)
	}
	d.nsrv = srv
	attrs := []any{"socket", nc.Socket, "max_frame", srv.MaxFrame()}
	if a := srv.Addr(); a != nil {
		attrs = append(attrs, "addr", a.String())
	}
	d.log.Info("native protocol listening", attrs...)
	return nil
}

// startUplinks connects the uplinks. One whose server cannot be reached
// redials in the background (offline is normal); one whose server answers
// without its stream is a configuration error.
func (d *Daemon) startUplinks(ctx context.Context) error {
	d.uplinks = make(map[string]*uplink.Uplink, len(d.cfg.Uplinks))
	for _, uc := range d.cfg.Uplinks {
		uc.Logger = d.log
		u, err := uplink.New(uc)
		if err != nil {
			return &ConfigError{Err: err}
		}
		d.uplinks[uc.Name] = u
		if err := u.Start(ctx); err != nil {
			return &ConfigError{Err: err}
		}
	}
	if len(d.uplinks) > 0 {
		d.group.Go(func() { watchUplinks(d.bg, d.log, d.uplinks) })
	}
	return nil
}

// startEngine opens the store and starts the engine on it. Start recovers
// the store's state before it returns; a ctx that ends during recovery
// answers errStoppedEarly. A directory held by another process fails with
// a message that says so (storage.ErrLocked).
func (d *Daemon) startEngine(ctx context.Context, ec engine.Config) error {
	store, err := storage.Open(storage.Config{Dir: d.cfg.DataDir, Memory: d.cfg.Memory, EncryptionKey: d.cfg.EncryptionKey, Logger: d.log})
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	d.store = store
	eng, err := engine.New(ec, store)
	if err != nil {
		return fmt.Errorf("create engine: %w", err)
	}
	if err := eng.Start(ctx); err != nil {
		if ctx.Err() != nil {
			return errStoppedEarly
		}
		return fmt.Errorf("start engine: %w", err)
	}
	d.eng = eng
	return nil
}

// startMQTT starts the MQTT client (SPEC 6), when MQTT is on, and binds
// the MQTT handlers among queues to it. A broker that is down at boot is
// retried in the background.
func (d *Daemon) startMQTT(ctx context.Context, queues map[string]engine.QueueConfig) error {
	if d.cfg.MQTT == nil {
		return nil
	}
	mcfg := *d.cfg.MQTT
	mcfg.Logger = d.log
	mc, err := mqttapi.New(mcfg, d.eng)
	if err != nil {
		return &ConfigError{Err: err}
	}
	bindMQTT(queues, mc)
	d.mqtt.c.Store(mc)
	d.stopLevels = d.gov.gov.Subscribe(func(ev resource.Event) { mc.OnLevel(ev.From, ev.To, ev.Reason, ev.At) })
	startCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	err = mc.Start(startCtx)
	cancel()
	if err != nil {
		return fmt.Errorf("start mqtt: %w", err)
	}
	d.mc = mc
	return nil
}

// reload applies the configuration that load answers (Reload).
func (d *Daemon) reload(load func() (Config, error)) error {
	notifyReloading(d.log)
	defer notifyReady(d.log)
	cfg, err := load()
	if err != nil {
		return err
	}
	if err := (schedule.Config{Schedules: cfg.Schedules}).Validate(); err != nil {
		return err
	}
	queues := maps.Clone(cfg.Engine.Queues)
	release, err := buildHandlers(cfg.Handlers, queues, d.mqtt.c.Load(), d.uplinks)
	if err != nil {
		release()
		return err
	}
	rc := cfg.Governor
	rc.Logger = d.log
	if err := d.gov.gov.SetThresholds(rc); err != nil {
		release()
		return err
	}
	if err := d.eng.Reconfigure(queues); err != nil {
		release()
		return err
	}
	d.gov.apply()
	if err := d.sched.SetFile(d.bg, cfg.Schedules); err != nil {
		d.log.Error("schedules not reloaded", "err", err) // validated above: not expected
	}
	d.release()
	d.release = release
	d.uplinkQueues.Store(uplinkQueues(cfg.Handlers))
	return nil
}
