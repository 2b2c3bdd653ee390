// Package httphandler runs a job by sending its payload to a URL (SPEC 7).
//
// Each run is one request (POST unless configured), body = payload, with
//
//	Content-Type        the job's content type; else Config.Headers'
//	                    Content-Type; else application/octet-stream
//	Idempotency-Key     the job id, so the receiver can drop a redelivery
//	Edgeq-Job-Id        the job id
//	Edgeq-Queue         the queue
//	Edgeq-Attempt       the attempt, from 1
//	Edgeq-Header-<Name> each of the job's headers
//
// plus Config.Headers. The answer maps to a verdict:
//
//	2xx                         Ack
//	408, 429, 5xx               Retry, TargetFailed, RetryAfter from Retry-After
//	network error, timeout      Retry, TargetFailed
//	3xx                         Dead: redirects are not followed (a redirect
//	                            means the URL is wrong, and following one
//	                            would resend the payload somewhere else)
//	other 4xx                   Dead
//	ctx done                    Retry ("interrupted"), not TargetFailed
//
// Errors read "HTTP 503: <the first Config.MaxResponse bytes of the body>".
// At most MaxResponse + 64 KiB of a body is ever read: the rest of a short
// body is drained so the connection is reused; a longer one costs its
// connection instead.
//
// Retry-After (delay-seconds or an HTTP date) is capped at [MaxRetryAfter].
// TargetFailed feeds the queue's circuit breaker: a dead endpoint opens it
// instead of burning every job's attempts.
//
// # Goroutines and concurrency
//
// The package starts no goroutines; net/http keeps its usual connection
// goroutines for idle keep-alive connections, which
// [Handler.CloseIdleConnections] ends. A [Handler] is immutable after [New]
// and safe for concurrent use.
package httphandler
