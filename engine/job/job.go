package job

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// ID identifies a job. IDs come from one monotonic sequence that survives
// restarts, so their string forms sort in creation order.
type ID uint64

// String formats the ID as 16 lowercase hex digits.
func (id ID) String() string {
	const hex = "0123456789abcdef"
	var b [16]byte
	for i := 15; i >= 0; i-- {
		b[i] = hex[id&0xf]
		id >>= 4
	}
	return string(b[:])
}

// ParseID parses the form produced by ID.String.
func ParseID(s string) (ID, error) {
	if len(s) != 16 {
		return 0, fmt.Errorf("%w: job id %q: want 16 hex digits", ErrInvalidArgument, s)
	}
	v, err := strconv.ParseUint(s, 16, 64)
	if err != nil || v == 0 {
		return 0, fmt.Errorf("%w: job id %q: want 16 hex digits", ErrInvalidArgument, s)
	}
	return ID(v), nil
}

// State is where a job is in its life.
type State uint8

// States of a stored job. Done is stored only while a queue's retain_done
// keeps a finished job (with its result, until ExpiresAt); otherwise a
// finished job is deleted and Done appears only in events.
const (
	StateReady State = iota + 1
	StateDelayed
	StateLeased
	StateDead
	StateDone
)

var stateNames = [...]string{StateReady: "ready", StateDelayed: "delayed", StateLeased: "leased", StateDead: "dead", StateDone: "done"}

func (s State) String() string {
	if int(s) < len(stateNames) && stateNames[s] != "" {
		return stateNames[s]
	}
	return "state(" + strconv.Itoa(int(s)) + ")"
}

// ParseState parses a state name.
func ParseState(s string) (State, error) {
	for i, n := range stateNames {
		if n != "" && n == s {
			return State(i), nil
		}
	}
	return 0, fmt.Errorf("%w: unknown state %q", ErrInvalidArgument, s)
}

// Class is a queue's priority class. Lower values are served first.
type Class uint8

// Priority classes, from most to least urgent.
const (
	ClassCritical Class = iota + 1
	ClassHigh
	ClassNormal
	ClassLow
	ClassBulk
)

var classNames = [...]string{ClassCritical: "critical", ClassHigh: "high", ClassNormal: "normal", ClassLow: "low", ClassBulk: "bulk"}

// Classes lists every class in priority order.
var Classes = []Class{ClassCritical, ClassHigh, ClassNormal, ClassLow, ClassBulk}

func (c Class) String() string {
	if int(c) < len(classNames) && classNames[c] != "" {
		return classNames[c]
	}
	return "class(" + strconv.Itoa(int(c)) + ")"
}

// ParseClass parses a class name; the empty string is ClassNormal.
func ParseClass(s string) (Class, error) {
	if s == "" {
		return ClassNormal, nil
	}
	for i, n := range classNames {
		if n != "" && n == s {
			return Class(i), nil
		}
	}
	return 0, fmt.Errorf("unknown class %q (want critical, high, normal, low or bulk)", s)
}

var queueName = regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]{0,63}$`)

// ValidQueueName reports whether name matches ^[a-z0-9][a-z0-9_.-]{0,63}$.
func ValidQueueName(name string) bool { return queueName.MatchString(name) }

// CheckQueueName returns ErrInvalidQueue, naming the queue, when the name is not valid.
func CheckQueueName(name string) error {
	if !ValidQueueName(name) {
		return fmt.Errorf("%w: %q must match ^[a-z0-9][a-z0-9_.-]{0,63}$", ErrInvalidQueue, name)
	}
	return nil
}

var groupName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.:@/+=-]{0,127}$`)

// CheckGroupName returns ErrInvalidArgument, naming the group, when name is
// not a valid group (^[A-Za-z0-9][A-Za-z0-9_.:@/+=-]{0,127}$).
func CheckGroupName(name string) error {
	if !groupName.MatchString(name) {
		return fmt.Errorf("%w: group %q must match ^[A-Za-z0-9][A-Za-z0-9_.:@/+=-]{0,127}$", ErrInvalidArgument, name)
	}
	return nil
}

// Job is a stored job. Payload is nil when the job was read without it.
type Job struct {
	ID          ID
	Queue       string
	State       State
	Attempt     int // attempts started; incremented (durably) when leased
	MaxAttempts int
	CreatedAt   time.Time
	RunAt       time.Time // when it became or becomes ready
	ExpiresAt   time.Time // zero: no deadline; for a done job, when it is deleted (retain_done)
	TTR         time.Duration
	Key         string // idempotency key, "" when none
	// Group orders the job with the other jobs of its group in its queue
	// (ordered groups: the queue's GroupConcurrency bounds how many run at
	// once); "" when none.
	Group       string
	Headers     map[string]string
	ContentType string
	Payload     []byte
	Size        int // payload length in bytes; stores set it on every read, with or without the payload
	LastError   string

	// ReadySeq orders the ready index: a fresh value from the job sequence
	// each time the job becomes ready, so FIFO holds for jobs that became
	// ready at the same time and the per-queue cursor only moves forward.
	ReadySeq uint64
	// LeaseID and LeaseExpires are set while the job is leased.
	LeaseID      string
	LeaseExpires time.Time

	// Result is what a finished job answered (a worker's ack, an exec
	// handler's stdout, an http handler's response body), at most the
	// queue's max_result bytes; ResultTruncated says it was cut there.
	// Kept only on a done job that its queue retains.
	Result          []byte
	ResultTruncated bool

	// TraceParent and TraceState are the W3C trace context the job was
	// enqueued with ("" when none), passed unchanged to every attempt.
	TraceParent string
	TraceState  string

	// OnSuccess is the job its success enqueues, nil when none.
	OnSuccess *FollowUp
}

// FollowUp is the job that a job's success enqueues (on_success) in the
// commit of its ack: into Queue, with Payload when HasPayload is set, else
// with the job's result. Never mutated once set, so jobs share it.
type FollowUp struct {
	Queue      string
	Payload    []byte
	HasPayload bool
}

// Clone returns a copy of j that shares no maps with it (the payload bytes
// are shared: they are never mutated in place).
func (j *Job) Clone() *Job {
	c := *j
	if j.Headers != nil {
		c.Headers = make(map[string]string, len(j.Headers))
		for k, v := range j.Headers {
			c.Headers[k] = v
		}
	}
	return &c
}

// KeyMode says what an idempotency key deduplicates against.
type KeyMode uint8

// Key modes. The zero value is "the queue's", which defaults to KeyWindow.
const (
	// KeyWindow: a key seen within the dedupe window answers the job that
	// first carried it, whatever became of that job.
	KeyWindow KeyMode = iota + 1
	// KeyActive: a key deduplicates only while its job is ready, delayed
	// or leased; once that job is done, dead or gone, the key enqueues anew.
	KeyActive
	// KeyReplace: a key whose job is still waiting (ready or delayed) has
	// that job's payload, content type, headers and on_success replaced, keeping its
	// place; a leased job is not touched and a new one is enqueued behind
	// it; a finished one is enqueued anew.
	KeyReplace
)

var keyModeNames = [...]string{KeyWindow: "window", KeyActive: "active", KeyReplace: "replace"}

func (m KeyMode) String() string {
	if int(m) < len(keyModeNames) && keyModeNames[m] != "" {
		return keyModeNames[m]
	}
	return "key_mode(" + strconv.Itoa(int(m)) + ")"
}

// ParseKeyMode parses a key mode; "" is 0, the queue's.
func ParseKeyMode(s string) (KeyMode, error) {
	if s == "" {
		return 0, nil
	}
	for i, n := range keyModeNames {
		if n != "" && n == s {
			return KeyMode(i), nil
		}
	}
	return 0, fmt.Errorf("%w: key_mode: unknown mode %q (want window, active or replace)", ErrInvalidArgument, s)
}

// New is a request to enqueue one job.
type New struct {
	Queue       string
	Payload     []byte
	ContentType string
	Headers     map[string]string
	Key         string        // idempotency key, optional
	KeyMode     KeyMode       // what Key deduplicates against; 0: the queue's
	Group       string        // ordered group, optional (CheckGroupName)
	Delay       time.Duration // run after now+Delay; ignored when RunAt is set
	RunAt       time.Time     // optional absolute run time
	MaxAttempts int           // 0: the queue's default
	TTR         time.Duration // 0: the queue's default
	ExpiresIn   time.Duration // 0: none; ignored when ExpiresAt is set
	ExpiresAt   time.Time     // optional absolute deadline
	TraceParent string        // W3C traceparent, optional (CheckTrace)
	TraceState  string        // W3C tracestate, optional; only with TraceParent
	OnSuccess   *FollowUp     // the job its success enqueues, optional
}

// CheckTrace checks a W3C trace context (traceparent, tracestate): a
// traceparent of version 00 is exactly 2-32-16-2 lowercase hex digits; a
// later version (not ff) may carry more after a '-'; the trace and parent
// ids are not all zeros. A tracestate is at most 512 printable ASCII
// characters, of at most 32 comma-separated members, and needs a
// traceparent. Errors wrap ErrInvalidArgument and name the field.
func CheckTrace(parent, state string) error {
	if parent == "" {
		if state != "" {
			return fmt.Errorf("%w: tracestate: needs a traceparent", ErrInvalidArgument)
		}
		return nil
	}
	bad := func(why string) error {
		return fmt.Errorf("%w: traceparent: %q %s (want 00-<32 hex>-<16 hex>-<2 hex>)", ErrInvalidArgument, parent, why)
	}
	if len(parent) < 55 || (len(parent) > 55 && (parent[:2] == "00" || parent[55] != '-')) {
		return bad("is malformed")
	}
	for i := range 55 {
		c := parent[i]
		if i == 2 || i == 35 || i == 52 {
			if c != '-' {
				return bad("is malformed")
			}
		} else if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return bad("is not lowercase hex")
		}
	}
	switch {
	case parent[:2] == "ff":
		return bad("has the invalid version ff")
	case parent[3:35] == "00000000000000000000000000000000":
		return bad("has an all-zero trace id")
	case parent[36:52] == "0000000000000000":
		return bad("has an all-zero parent id")
	}
	if len(state) > 512 {
		return fmt.Errorf("%w: tracestate: %d characters, at most 512", ErrInvalidArgument, len(state))
	}
	for i := 0; i < len(state); i++ {
		if state[i] < 0x20 || state[i] > 0x7e {
			return fmt.Errorf("%w: tracestate: not printable ASCII", ErrInvalidArgument)
		}
	}
	if n := strings.Count(state, ",") + 1; state != "" && n > 32 {
		return fmt.Errorf("%w: tracestate: %d members, at most 32", ErrInvalidArgument, n)
	}
	return nil
}

// Result answers one enqueue.
type Result struct {
	ID        ID
	Queue     string
	State     State
	Durable   bool // fsynced before the answer
	Duplicate bool // the key was seen within the dedupe window; ID is the first job's
	// Replaced: the key's waiting job (ID) took this payload (KeyReplace).
	Replaced bool
}
