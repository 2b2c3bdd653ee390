package httpapi

import (
	"strconv"
	"time"

	"github.com/edgeq/edgeq/engine"
	"github.com/edgeq/edgeq/engine/job"
	"github.com/edgeq/edgeq/transport/wire"
)

// The JSON documents of the API (SPEC §5). Server and Client share these
// definitions; the server writes EnqueueResult and ErrorBody by hand on the
// hot path, and tests hold those writers equal to encoding/json.

// EnqueueResult answers POST /v1/queues/{q}/jobs.
type EnqueueResult struct {
	ID        string `json:"id"`
	Queue     string `json:"queue"`
	State     string `json:"state"`
	Durable   bool   `json:"durable"`            // fsynced before the answer
	Duplicate bool   `json:"duplicate"`          // the key was seen in the dedupe window; ID is the first job's
	Replaced  bool   `json:"replaced,omitempty"` // key_mode replace: the key's waiting job (ID) took this payload
}

// BatchResult answers one line of a batch, in line order.
type BatchResult struct {
	ID        string `json:"id"`
	State     string `json:"state"`
	Durable   bool   `json:"durable"`
	Duplicate bool   `json:"duplicate"`
	Replaced  bool   `json:"replaced,omitempty"`
}

// BatchResponse answers POST /v1/queues/{q}/batch.
type BatchResponse struct {
	Jobs []BatchResult `json:"jobs"`
}

// Job is a job as JSON (wire.Job).
type Job = wire.Job

// Lease is the lease a job is held under (wire.Lease).
type Lease = wire.Lease

// JobList answers /lease and the dead-letter listing. Next, in a listing, is
// the ID to pass as after for the next page; empty when there is none.
type JobList struct {
	Jobs []Job  `json:"jobs"`
	Next string `json:"next,omitempty"`
}

// LeaseResult answers a lease that carried acks: the jobs leased, and each
// ack's answer in request order (as POST /v1/acks answers them).
type LeaseResult struct {
	Jobs []Job       `json:"jobs"`
	Acks []AckResult `json:"acks"`
}

// QueueStats is a queue's stats. Ages and ETAs are in seconds; rates are per
// second over the last minute; DrainETAS is nil (null) when the backlog is
// not shrinking.
type QueueStats struct {
	Name            string   `json:"name"`
	Class           string   `json:"class"`
	Paused          bool     `json:"paused"`
	Shed            bool     `json:"shed"`
	Ready           int64    `json:"ready"`
	Delayed         int64    `json:"delayed"`
	Leased          int64    `json:"leased"`
	Dead            int64    `json:"dead"`
	OldestReadyAgeS float64  `json:"oldest_ready_age_s"`
	EnqueuedTotal   uint64   `json:"enqueued_total"`
	CompletedTotal  uint64   `json:"completed_total"`
	RetriedTotal    uint64   `json:"retried_total"`
	DeadTotal       uint64   `json:"dead_total"`
	RejectedTotal   uint64   `json:"rejected_total"`
	Concurrency     int      `json:"concurrency"`
	InRate          float64  `json:"in_rate"`
	OutRate         float64  `json:"out_rate"`
	DrainETAS       *float64 `json:"drain_eta_s"`
	// Beyond SPEC §5's list, for operators and the status page.
	Done     int64  `json:"done"`     // finished jobs retained (retain_done)
	Running  int    `json:"running"`  // in-process jobs running now
	Breaker  string `json:"breaker"`  // "closed", "open" or "half-open"
	Alerting bool   `json:"alerting"` // a backlog alert is raised
	// Bounds (issue 19): payload bytes of the ready, delayed and leased
	// jobs (what max_bytes bounds), and jobs accepted then dropped
	// (on_full evict_oldest, max_age).
	Bytes        *int64 `json:"bytes"` // null when not counted at the start (no max_bytes then)
	EvictedTotal uint64 `json:"evicted_total"`
	// Ordered groups: the cap on one group's running jobs, the groups with
	// work, and the group whose head has been ready longest with that age
	// ("" and 0 when no group has a ready job).
	GroupConcurrency int     `json:"group_concurrency"`
	Groups           int     `json:"groups"`
	OldestGroup      string  `json:"oldest_group"`
	OldestGroupAgeS  float64 `json:"oldest_group_age_s"`
}

// QueueList answers GET /v1/queues.
type QueueList struct {
	Queues []QueueStats `json:"queues"`
}

// GovernorStats is the governor block of GET /v1/stats.
// Figures the governor does not know (no such signal on the host) are null.
type GovernorStats struct {
	Level         string      `json:"level"`
	Concurrency   int         `json:"concurrency"`
	CPUPercent    *float64    `json:"cpu_percent"`
	MemoryPercent *float64    `json:"memory_percent"`
	DiskFreeBytes *uint64     `json:"disk_free_bytes"`
	Reason        string      `json:"reason"`
	Drill         *DrillState `json:"drill"`
}

// DrillState is a running drill: the level forced and until when.
type DrillState struct {
	Level string    `json:"level"`
	Until time.Time `json:"until"`
}

// StatsDoc answers GET /v1/stats; `edgeq stats --json` prints it.
// Governor is nil (null) while no governor is wired to the server.
// StoreShort is set when the store lost acknowledged writes (engine.Stats).
type StatsDoc struct {
	Governor   *GovernorStats `json:"governor"`
	Queues     []QueueStats   `json:"queues"`
	UptimeS    float64        `json:"uptime_s"`
	StoreShort bool           `json:"store_short,omitempty"`
	Uplinks    []UplinkStats  `json:"uplinks,omitempty"`
	Schedules  *ScheduleStats `json:"schedules,omitempty"`
}

// StateResult answers nack: the state the job went to (delayed, ready or dead).
type StateResult struct {
	State string `json:"state"`
}

// ExtendResult answers extend.
type ExtendResult struct {
	ExpiresAt time.Time `json:"expires_at"`
}

// OKResult answers ack, fail and cancel.
type OKResult struct {
	OK bool `json:"ok"`
}

// PauseResult answers pause and resume.
type PauseResult struct {
	Queue  string `json:"queue"`
	Paused bool   `json:"paused"`
}

// DeletedResult answers the purges.
type DeletedResult struct {
	Deleted int `json:"deleted"`
}

// MovedResult answers dead-letter retry.
type MovedResult struct {
	Moved int `json:"moved"`
}

// Health answers /healthz and /readyz.
type Health struct {
	Status string `json:"status"`
}

// Readiness answers /readyz while the engine accepts work: 200 "ready", or
// 503 "shedding" at governor level critical, when only critical queues
// take jobs. Paused and Refused name the queues the level sheds.
type Readiness struct {
	Status  string   `json:"status"`  // "ready" or "shedding"
	Level   string   `json:"level"`   // the governor's level
	Paused  []string `json:"paused"`  // queues whose dispatch the level pauses
	Refused []string `json:"refused"` // queues whose new jobs the level refuses (429 shed)
}

// ErrorBody is the error of an ErrorResponse.
type ErrorBody struct {
	Code        string `json:"code"`
	Message     string `json:"message"`
	RetryAfterS int    `json:"retry_after_s,omitempty"`
}

// ErrorResponse is every non-2xx answer: {"error":{...}}.
type ErrorResponse struct {
	Error ErrorBody `json:"error"`
}

var jsonContentType = []string{"application/json"}

func queueStatsToWire(q engine.QueueStats) QueueStats {
	w := QueueStats{
		Name:            q.Name,
		Class:           className(q.Class),
		Paused:          q.Paused,
		Shed:            q.Shed,
		Ready:           q.Ready,
		Delayed:         q.Delayed,
		Leased:          q.Leased,
		Dead:            q.Dead,
		Done:            q.Done,
		OldestReadyAgeS: q.OldestReadyAge.Seconds(),
		EnqueuedTotal:   q.EnqueuedTotal,
		CompletedTotal:  q.CompletedTotal,
		RetriedTotal:    q.RetriedTotal,
		DeadTotal:       q.DeadTotal,
		RejectedTotal:   q.RejectedTotal,
		Concurrency:     q.Concurrency,
		InRate:          q.InRate,
		OutRate:         q.OutRate,
		Running:         q.Running,
		Breaker:         q.Breaker.String(),
		Alerting:        q.Alerting,
		Bytes:           knownBytes(q.Bytes, q.BytesUnknown),
	}
	w.GroupConcurrency, w.Groups, w.OldestGroup = q.GroupConcurrency, q.Groups, q.OldestGroup
	w.OldestGroupAgeS = q.OldestGroupAge.Seconds()
	for _, n := range q.Evicted {
		w.EvictedTotal += n
	}
	if q.DrainETA != nil {
		eta := q.DrainETA.Seconds()
		w.DrainETAS = &eta
	}
	return w
}

// className names a class; the zero class is the default, normal.
func className(c job.Class) string {
	if c == 0 {
		c = job.ClassNormal
	}
	return c.String()
}

func queuesToWire(qs []engine.QueueStats) []QueueStats {
	out := make([]QueueStats, len(qs)) // [] rather than null when empty
	for i, q := range qs {
		out[i] = queueStatsToWire(q)
	}
	return out
}

// appendResult encodes r as EnqueueResult JSON (byte for byte what
// encoding/json writes, without its reflection).
func appendResult(b []byte, r job.Result) []byte {
	b = appendID(append(b, `{"id":"`...), r.ID)
	b = append(b, `","queue":`...)
	b = wire.AppendJSONString(b, r.Queue)
	b = append(b, `,"state":`...)
	b = wire.AppendJSONString(b, r.State.String())
	b = append(b, `,"durable":`...)
	b = strconv.AppendBool(b, r.Durable)
	b = append(b, `,"duplicate":`...)
	b = strconv.AppendBool(b, r.Duplicate)
	if r.Replaced {
		b = append(b, `,"replaced":true`...)
	}
	return append(b, "}\n"...)
}

// appendID appends id as its 16 hex digits (job.ID.String without the
// string).
func appendID(b []byte, id job.ID) []byte {
	const hex = "0123456789abcdef"
	for shift := 60; shift >= 0; shift -= 4 {
		b = append(b, hex[(id>>uint(shift))&0xf])
	}
	return b
}

// appendBatchAnswer appends the BatchResponse of res as encoding/json
// writes it, newline included, without a string or reflection per job.
func appendBatchAnswer(b []byte, res []job.Result) []byte {
	b = append(b, `{"jobs":[`...)
	for i, r := range res {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendID(append(b, `{"id":"`...), r.ID)
		b = append(b, `","state":`...)
		b = wire.AppendJSONString(b, r.State.String())
		b = append(b, `,"durable":`...)
		b = strconv.AppendBool(b, r.Durable)
		b = append(b, `,"duplicate":`...)
		b = strconv.AppendBool(b, r.Duplicate)
		if r.Replaced {
			b = append(b, `,"replaced":true`...)
		}
		b = append(b, '}')
	}
	return append(b, "]}\n"...)
}

// knownBytes is a byte count for the wire: null when it is not known.
func knownBytes(n int64, unknown bool) *int64 {
	if unknown {
		return nil
	}
	return &n
}
