// Package wire is the JSON form of edgeq's jobs that both transports speak:
// a job as JSON (Job, FromJob), the line of a batch enqueue (BatchLine),
// which is also the MQTT submit envelope, and the field errors and value
// parsers of both. It imports engine/job and the standard library only, so
// that MQTT ingest does not pull in net/http or Prometheus.
//
// It starts no goroutines and holds no state; every function is safe for
// concurrent use. Decode errors name the field and wrap a job sentinel
// (job.ErrInvalidArgument), which each transport maps to its own answer.
package wire
