package resource

import (
	"cmp"
	"fmt"
	"log/slog"
	"runtime"
	"time"
)

// MiB is 1<<20 bytes.
const MiB = 1 << 20

// Config configures a Governor. Zero values mean the defaults of SPEC §9,
// field by field (a Thresholds with only Enter set keeps the default Exit).
type Config struct {
	Interval time.Duration // between samples; default 1s
	Dwell    time.Duration // minimum time in a level, and calm time before each step down; default 15s

	CPU    Thresholds // CPU busy percent; default {Enter: 90, Exit: 75}
	Memory Thresholds // memory percent of the effective limit; default {Enter: 85, Exit: 75}

	DiskMinFree uint64 // bytes free on the data dir below which the level is critical; default 256 MiB

	MinConcurrency int // default 1
	MaxConcurrency int // default 2 × runtime.NumCPU()

	// Symptom thresholds: the engine's commit latency p99 and job wait
	// latency p99 (Usage) above which host pressure is hurting the service.
	CommitLatency time.Duration // default 500ms
	WaitLatency   time.Duration // default 10s

	Logger *slog.Logger     // nil: discard
	Clock  func() time.Time // nil: time.Now
}

// Thresholds are the percentages at which a level is entered and left again.
// Enter is above Exit, so that a signal hovering near one of them does not
// flap the level.
type Thresholds struct {
	Enter float64
	Exit  float64
}

// Interlock and stall thresholds that are not configurable; doc.go explains
// each one. Each pair is (enter, exit).
const (
	memCriticalEnter = 97.0 // memory percent: headroom nearly exhausted
	memCriticalExit  = 95.0
	memEnterCeiling  = 95.0 // Config.Memory.Enter must leave room below the interlock

	goMemElevatedEnter = 80.0 // Go memory percent of GOMEMLIMIT
	goMemElevatedExit  = 70.0
	goMemCriticalEnter = 90.0
	goMemCriticalExit  = 85.0

	psiMemSomeEnter = 10.0 // PSI memory some avg10 percent
	psiMemSomeExit  = 5.0
	psiMemFullEnter = 10.0 // PSI memory full avg10 percent: thrashing
	psiMemFullExit  = 5.0
	psiIOFullEnter  = 30.0 // PSI io full avg10 percent
	psiIOFullExit   = 15.0
	psiCPUSomeEnter = 50.0 // PSI cpu some avg10 percent
	psiCPUSomeExit  = 25.0

	majorFaultsEnter = 100.0 // major page faults per second, when PSI memory is unknown
	majorFaultsExit  = 50.0

	runQueueEnter = 2.0 // 1-minute load per core
	runQueueExit  = 1.5

	thermalEnter = 80.0 // degrees Celsius; Raspberry Pi firmware throttles at 80-85
	thermalExit  = 75.0

	symptomExitRatio = 0.75 // a symptom holds down to this fraction of its threshold
)

func (c Config) withDefaults() Config {
	c.Interval = cmp.Or(c.Interval, time.Second)
	c.Dwell = cmp.Or(c.Dwell, 15*time.Second)
	c.CPU.Enter = cmp.Or(c.CPU.Enter, 90)
	c.CPU.Exit = cmp.Or(c.CPU.Exit, 75)
	c.Memory.Enter = cmp.Or(c.Memory.Enter, 85)
	c.Memory.Exit = cmp.Or(c.Memory.Exit, 75)
	c.DiskMinFree = cmp.Or(c.DiskMinFree, 256*MiB)
	c.MinConcurrency = cmp.Or(c.MinConcurrency, 1)
	c.MaxConcurrency = cmp.Or(c.MaxConcurrency, 2*runtime.NumCPU())
	c.CommitLatency = cmp.Or(c.CommitLatency, 500*time.Millisecond)
	c.WaitLatency = cmp.Or(c.WaitLatency, 10*time.Second)
	c.Logger = cmp.Or(c.Logger, slog.New(slog.DiscardHandler))
	if c.Clock == nil {
		c.Clock = time.Now
	}
	return c
}

// Validate checks the configuration after defaults are applied and names the
// offending key as the configuration file spells it (SPEC §9), for example
// "governor.cpu: enter 70 is below exit 75".
func (c Config) Validate() error {
	c = c.withDefaults()
	switch {
	case c.Interval < 0:
		return fmt.Errorf("governor.interval: %s is negative", c.Interval)
	case c.Dwell < 0:
		return fmt.Errorf("governor.dwell: %s is negative", c.Dwell)
	}
	if err := c.CPU.validate("governor.cpu", 100); err != nil {
		return err
	}
	if err := c.Memory.validate("governor.memory", memEnterCeiling); err != nil {
		return err
	}
	switch {
	case c.MinConcurrency < 0:
		return fmt.Errorf("governor.concurrency.min: %d is negative", c.MinConcurrency)
	case c.MaxConcurrency < 0:
		return fmt.Errorf("governor.concurrency.max: %d is negative", c.MaxConcurrency)
	case c.MinConcurrency > c.MaxConcurrency:
		return fmt.Errorf("governor.concurrency: min %d is above max %d", c.MinConcurrency, c.MaxConcurrency)
	case c.CommitLatency < 0:
		return fmt.Errorf("governor.commit_latency: %s is negative", c.CommitLatency)
	case c.WaitLatency < 0:
		return fmt.Errorf("governor.wait_latency: %s is negative", c.WaitLatency)
	}
	return nil
}

func (t Thresholds) validate(key string, ceiling float64) error {
	switch {
	case t.Enter <= 0 || t.Enter > 100:
		return fmt.Errorf("%s.enter: %g is not a percentage in (0, 100]", key, t.Enter)
	case t.Exit <= 0 || t.Exit > 100:
		return fmt.Errorf("%s.exit: %g is not a percentage in (0, 100]", key, t.Exit)
	case t.Enter < t.Exit:
		return fmt.Errorf("%s: enter %g is below exit %g", key, t.Enter, t.Exit)
	case t.Enter == t.Exit:
		return fmt.Errorf("%s: enter %g equals exit %g (enter must be above exit)", key, t.Enter, t.Exit)
	case t.Enter > ceiling:
		return fmt.Errorf("%s.enter: %g is above %g (the critical interlock is at %g)", key, t.Enter, ceiling, memCriticalEnter)
	}
	return nil
}
