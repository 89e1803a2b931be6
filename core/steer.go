package core

import (
	"errors"
	"fmt"
	"time"
)

// This file holds the errors a handler returns to steer its job instead of
// leaving it to graphile-worker's retries: fail for good, or run again
// later without counting the attempt.

// PermanentError is a handler's failure that no retry can fix: the job fails
// for good at once. Build it with FailPermanently.
type PermanentError struct {
	Err error
}

// FailPermanently returns an error that fails the job for good when a
// handler returns it (or wraps it, or an AfterJobRun hook does): the job
// gets no more attempts (attempts = max_attempts), err's text is recorded as
// last_error, and the job stays in the table unlocked, as graphile-worker's
// permanently_fail_jobs leaves it, until it is rescheduled or removed. The
// recording goes through the worker's batched failure statement, so it costs
// no extra round trip. A job interrupted by shutdown goes back to the queue
// whatever its handler returned.
//
// In a batch task's results it fails one item for good: see NewBatchTask.
func FailPermanently(err error) error { return &PermanentError{Err: err} }

func (e *PermanentError) Error() string {
	if e.Err == nil {
		return "gworker: the handler failed the job permanently"
	}
	return e.Err.Error()
}

func (e *PermanentError) Unwrap() error { return e.Err }

// RetryAfterError asks for the job to run again after Delay without counting
// the attempt. Build it with RetryAfter.
type RetryAfterError struct {
	Delay time.Duration
	Err   error // why, recorded as last_error; nil keeps last_error
}

// RetryAfter returns an error that, returned by a handler, puts the job back
// to run again d from now (on the database's clock; d <= 0 means at once),
// with the attempt not counted: attempts is lowered by one, so max_attempts
// still bounds real failures only, and run_at is set to now + d even when
// the job was due later. When err is not nil its text is recorded as
// last_error; with a nil err last_error is left as it was, so a job that
// never failed does not look failed. Use it for "not yet": a rate limit, a
// resource that is not ready, a dependency still running. A handler that
// snoozes forever runs forever: bound it yourself (job.Attempts does not
// grow).
//
// In a batch task's results it snoozes one item: see NewBatchTask.
func RetryAfter(d time.Duration, err error) error { return &RetryAfterError{Delay: d, Err: err} }

func (e *RetryAfterError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("gworker: the handler asked to run the job again after %v", e.Delay)
	}
	return e.Err.Error()
}

func (e *RetryAfterError) Unwrap() error { return e.Err }

// steering is what a job's final error asks of it. The zero value is an
// ordinary failure: retried with backoff while attempts are left.
type steering struct {
	permanent bool          // fail for good
	snooze    bool          // run again after delay, the attempt not counted
	delay     time.Duration // for snooze
	keepError bool          // for snooze: leave last_error as it was
}

// steeringOf reads err. A *BatchFailure decides from its items; it comes
// first because its Unwrap exposes the items' errors, one of which may be
// a single item's *PermanentError.
func steeringOf(err error) steering {
	var bf *BatchFailure
	if errors.As(err, &bf) {
		return bf.steering()
	}
	var pe *PermanentError
	if errors.As(err, &pe) {
		return steering{permanent: true}
	}
	var re *RetryAfterError
	if errors.As(err, &re) {
		return steering{snooze: true, delay: max(re.Delay, 0), keepError: re.Err == nil}
	}
	return steering{}
}
