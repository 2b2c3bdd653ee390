// Package exechandler runs a job by running a command (SPEC 7): the
// payload on stdin, the job's identity in the environment, the exit status
// as the verdict.
//
//	exit 0                   Ack
//	exit 65 (EX_DATAERR)     Dead: the payload is bad, retrying cannot help
//	any other exit, signal   Retry with TargetFailed, Error "exit status N: <stderr tail>"
//	timeout                  Retry with TargetFailed, Error "timeout after 30s: <stderr tail>"
//	cannot start             Retry with TargetFailed, Error "start: <cause>"
//	ctx done                 Retry, Error "interrupted: <cause>: <stderr tail>"
//
// TargetFailed feeds the queue's circuit breaker, which opens after
// breaker.failures of them in a row across jobs: a command that keeps
// failing stops being run for the cool-down instead of spending every
// job's attempts. Exit 0 and exit 65 (the command worked and judged the
// payload) reset the count; shutdown (ctx done) does not touch it.
//
// The command runs without a shell, in an environment of PATH (the
// daemon's), Config.Env and EDGEQ_JOB_ID, EDGEQ_QUEUE and EDGEQ_ATTEMPT,
// which come last so that they always win. Stdout goes to /dev/null, or its
// first Config.Result bytes become the result of a job it acks. Only
// the last Config.StderrTail bytes of stderr are kept, in a ring, so a
// command that writes gigabytes costs a few kilobytes.
//
// # Process groups
//
// Each command is the leader of its own process group (Setpgid), and the
// group is what gets signalled: at the timeout or when ctx is done, SIGTERM
// to the whole group; [KillGrace] later, SIGKILL to the leader and the
// pipes closed; and when the leader has been waited for, SIGKILL to the
// whole group again. So no process the command started (sh -c 'sleep 100 &')
// outlives its job, even when the command itself exits normally, and Handle
// never hangs on a pipe that a grandchild keeps open. A process that leaves
// the group on purpose (setsid, setpgid) escapes; containing those needs a
// cgroup, which is systemd's job (KillMode=control-group).
//
// Killing the group after the leader has been reaped is safe in practice:
// while any member is alive the group id stays pinned, and when none is,
// the kernel would have to hand the same pid to a new group leader within
// microseconds, which takes a full wrap of pid_max.
//
// # Goroutines and concurrency
//
// The package starts no goroutines of its own. During Handle, os/exec runs
// two (feeding stdin, reading stderr) and a third that watches ctx; all
// have ended when Handle returns. A [Handler] is immutable after [New] and
// safe for concurrent use; each call runs its own process.
//
// Linux (and other unix) only: it relies on process groups.
package exechandler
