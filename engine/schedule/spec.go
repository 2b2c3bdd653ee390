package schedule

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/robfig/cron/v3"

	"github.com/edgeq/edgeq/engine/job"
)

// Catch-up modes: what happens to runs whose time passed while edgeq was
// not running (or the clock jumped over them).
const (
	CatchUpSkip = "skip" // none of them runs
	CatchUpOnce = "once" // one run stands for all of them (the default)
	CatchUpAll  = "all"  // each runs, the latest MaxCatchUp of them
)

// Overlap modes.
const (
	OverlapAllow = "allow" // every run is enqueued (the default)
	OverlapSkip  = "skip"  // a run is skipped while the last one is ready, delayed or leased
)

// MaxCatchUp bounds the runs that catch_up: all enqueues at once; older
// missed runs are skipped.
const MaxCatchUp = 100

// Spec is a schedule's definition: the body of PUT /v1/schedules/{name}
// and an entry of the configuration file's schedules. Durations are Go
// durations ("30s").
type Spec struct {
	// Cron is five fields (minute hour day-of-month month day-of-week),
	// a descriptor (@hourly, @daily...) or "@every D".
	Cron     string `json:"cron"`
	Timezone string `json:"timezone,omitempty"` // IANA name; "" is UTC
	Queue    string `json:"queue"`
	// Payload is the job's payload as a JSON value (content type
	// application/json); PayloadB64 is raw bytes instead. At most one.
	Payload     json.RawMessage   `json:"payload,omitempty"`
	PayloadB64  string            `json:"payload_b64,omitempty"`
	ContentType string            `json:"content_type,omitempty"`
	Headers     map[string]string `json:"headers,omitempty"`
	MaxAttempts int               `json:"max_attempts,omitempty"`
	TTR         string            `json:"ttr,omitempty"`
	ExpiresIn   string            `json:"expires_in,omitempty"`
	CatchUp     string            `json:"catch_up,omitempty"` // skip | once | all; "" is once
	Overlap     string            `json:"overlap,omitempty"`  // allow | skip; "" is allow
}

// parser reads five fields and descriptors (@every included): no seconds
// field, no TZ= prefix (Timezone says it).
var parser = cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)

// compiled is a checked Spec, ready to run.
type compiled struct {
	spec  Spec
	sched cron.Schedule
	every time.Duration // @every D; 0 for a calendar schedule
	// fixedHour: the hour field is not "*", so a wall-clock time that
	// comes twice (the clocks go back) runs once, as in Vixie cron.
	fixedHour bool
	loc       *time.Location
	payload   []byte
	ttr       time.Duration
	expires   time.Duration
}

// fieldErr is a refusal of a Spec naming its field.
func fieldErr(field, format string, args ...any) error {
	return fmt.Errorf("%w: %s: %s", job.ErrInvalidArgument, field, fmt.Sprintf(format, args...))
}

// compile checks s, all of it, and answers the first problem, naming its
// field. Defaults are filled in (catch_up once, overlap allow, UTC).
func compile(s Spec) (*compiled, error) {
	c := &compiled{spec: s}
	c.spec.CatchUp = cmpOr(s.CatchUp, CatchUpOnce)
	c.spec.Overlap = cmpOr(s.Overlap, OverlapAllow)
	c.spec.Timezone = cmpOr(s.Timezone, "UTC")
	expr := strings.TrimSpace(s.Cron)
	switch {
	case expr == "":
		return nil, fieldErr("cron", "missing: want five fields like \"*/5 * * * *\" or \"@every 30s\"")
	case strings.HasPrefix(expr, "TZ=") || strings.HasPrefix(expr, "CRON_TZ="):
		return nil, fieldErr("cron", "%q: give the time zone in timezone, not in cron", s.Cron)
	}
	sched, err := parser.Parse(expr)
	if err != nil {
		return nil, fieldErr("cron", "%q: %v", s.Cron, err)
	}
	c.sched = sched
	if cs, ok := sched.(*cron.SpecSchedule); ok {
		c.fixedHour = cs.Hour&starBit == 0
	}
	if _, ok := sched.(cron.ConstantDelaySchedule); ok {
		// The parser rounds an interval to whole seconds; refuse one it would change.
		d, err := time.ParseDuration(strings.TrimSpace(strings.TrimPrefix(expr, "@every")))
		if err != nil || d < time.Second || d%time.Second != 0 {
			return nil, fieldErr("cron", "%q: @every takes whole seconds, at least 1s", s.Cron)
		}
		c.every = d
	}
	if c.loc, err = time.LoadLocation(c.spec.Timezone); err != nil || c.spec.Timezone == "Local" {
		return nil, fieldErr("timezone", "unknown time zone %q (want an IANA name like Europe/Berlin)", c.spec.Timezone)
	}
	if err := job.CheckQueueName(s.Queue); err != nil {
		return nil, fmt.Errorf("%w: queue: %w", job.ErrInvalidArgument, err)
	}
	if err := c.compilePayload(); err != nil {
		return nil, err
	}
	if c.ttr, err = duration("ttr", s.TTR); err != nil {
		return nil, err
	}
	if c.expires, err = duration("expires_in", s.ExpiresIn); err != nil {
		return nil, err
	}
	if s.MaxAttempts < 0 || s.MaxAttempts > 1000 {
		return nil, fieldErr("max_attempts", "%d is outside 0..1000", s.MaxAttempts)
	}
	switch c.spec.CatchUp {
	case CatchUpSkip, CatchUpOnce, CatchUpAll:
	default:
		return nil, fieldErr("catch_up", "%q: want skip, once or all", s.CatchUp)
	}
	switch c.spec.Overlap {
	case OverlapAllow, OverlapSkip:
	default:
		return nil, fieldErr("overlap", "%q: want allow or skip", s.Overlap)
	}
	return c, nil
}

func (c *compiled) compilePayload() error {
	s := c.spec
	switch {
	case len(s.Payload) > 0 && s.PayloadB64 != "":
		return fieldErr("payload", "set payload or payload_b64, not both")
	case len(s.Payload) > 0:
		if !json.Valid(s.Payload) {
			return fieldErr("payload", "not a JSON value")
		}
		c.payload = []byte(s.Payload)
		c.spec.ContentType = cmpOr(s.ContentType, "application/json")
	case s.PayloadB64 != "":
		p, err := base64.StdEncoding.DecodeString(s.PayloadB64)
		if err != nil {
			return fieldErr("payload_b64", "not standard base64: %v", err)
		}
		c.payload = p
		c.spec.ContentType = cmpOr(s.ContentType, "application/octet-stream")
	}
	return nil
}

func duration(field, v string) (time.Duration, error) {
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fieldErr(field, "want a Go duration like 30s, got %q", v)
	}
	if d < 0 {
		return 0, fieldErr(field, "must not be negative, got %q", v)
	}
	return d, nil
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// newJob is one run of the schedule at run.
func (c *compiled) newJob(name string, run time.Time) job.New {
	h := make(map[string]string, len(c.spec.Headers)+2)
	for k, v := range c.spec.Headers {
		h[strings.ToLower(k)] = v
	}
	h[HeaderSchedule] = name
	h[HeaderRunAt] = run.UTC().Format(time.RFC3339)
	return job.New{
		Queue:       c.spec.Queue,
		Payload:     c.payload,
		ContentType: c.spec.ContentType,
		Headers:     h,
		MaxAttempts: c.spec.MaxAttempts,
		TTR:         c.ttr,
		ExpiresIn:   c.expires,
	}
}

// Headers every run carries.
const (
	HeaderSchedule = "edgeq-schedule" // the schedule's name
	HeaderRunAt    = "edgeq-run-at"   // the run's time (RFC 3339, UTC)
)

// starBit marks a field written "*" in cron.SpecSchedule.
const starBit = 1 << 63

// next is the first run after t. A calendar schedule's runs follow the
// wall clock of its time zone; with a fixed hour the clock must move
// forward between runs: on the night the clocks go back, a time that comes
// twice runs once (one with "*" in the hour field runs in each hour).
func (c *compiled) next(t time.Time) time.Time {
	if c.every > 0 {
		return t.Add(c.every)
	}
	n := c.sched.Next(t.In(c.loc))
	if c.fixedHour && !n.IsZero() && !wall(n, c.loc).After(wall(t, c.loc)) {
		n = c.sched.Next(n)
	}
	return n
}

// wall is t's reading on a clock of loc, as a UTC time to compare.
func wall(t time.Time, loc *time.Location) time.Time {
	l := t.In(loc)
	return time.Date(l.Year(), l.Month(), l.Day(), l.Hour(), l.Minute(), l.Second(), 0, time.UTC)
}

// marshal is the stored form of an API schedule's Spec.
func (c *compiled) marshal() ([]byte, error) {
	b, err := json.Marshal(c.spec)
	if err != nil {
		return nil, fmt.Errorf("encode schedule: %w", err)
	}
	return b, nil
}

var errConfigured = errors.New("defined in the configuration file")
