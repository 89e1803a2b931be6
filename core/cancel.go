package core

import (
	"context"
	"fmt"
)

// cancelChannel is gworker's own NOTIFY channel for cancelling running
// jobs. Channels are server-wide, so the payload names schema and worker.
const cancelChannel = "gworker:cancel"

// CancelledError is the cause of a handler's context cancelled by
// Utils.CancelJob: context.Cause(ctx) returns it.
type CancelledError struct {
	Reason string
}

func (e *CancelledError) Error() string { return "gworker: job cancelled: " + e.Reason }

// CancelJob cancels the job with the given id for good: it is marked
// permanently failed with reason as last_error, and is never retried. A
// job a worker runs right now keeps its lock; its worker is told (through
// NOTIFY) to cancel the handler's context, and records the job as failed
// with the reason when the handler returns, whatever it returns. If the
// worker misses the message, the job still cannot be retried, since it has
// no attempts left. It returns ErrJobNotFound when there is no such job.
//
// A graphile-worker (Node) worker running the job does not hear the message:
// its job runs to the end, and fails for good if it fails.
func (u *Utils) CancelJob(ctx context.Context, id int64, reason string) (*Job, error) {
	return u.cancel(ctx, u.sql.cancelByID, fmt.Sprint(id), id, reason)
}

// CancelJobByKey is CancelJob for the job holding a job key.
func (u *Utils) CancelJobByKey(ctx context.Context, key, reason string) (*Job, error) {
	if key == "" {
		return nil, &ValidationError{Field: "key", Reason: "must not be empty"}
	}
	return u.cancel(ctx, u.sql.cancelByKey, fmt.Sprintf("with key %q", key), key, reason)
}

// cancelledPrefix starts the last_error of every cancelled job; a worker
// that missed a cancellation's notification finds its jobs by it.
const cancelledPrefix = "Cancelled"

// cancelMessage is the last_error a cancellation with reason leaves.
func cancelMessage(reason string) string {
	if reason == "" {
		return cancelledPrefix
	}
	return cancelledPrefix + ": " + reason
}

func (u *Utils) cancel(ctx context.Context, sql, which string, target any, reason string) (*Job, error) {
	jobs, err := u.jobsQuery(ctx, "cancel job "+which, sql, target, cancelMessage(reason), u.schema)
	if err != nil {
		return nil, err
	}
	if len(jobs) == 0 {
		return nil, fmt.Errorf("gworker: cancel job %s: %w", which, ErrJobNotFound)
	}
	return jobs[0], nil
}

// cancelSQL takes the job's remaining attempts and, when a worker holds it
// (a lock younger than the 4-hour expiry), tells that worker.
func cancelSQL(r renderer, where string) string {
	return r.render(`with cancelled as (
  update {{schema}}._private_jobs as j
  set attempts = j.max_attempts, last_error = $2::text, updated_at = now()
  where ` + where + `
  returning j.*
), notified as (
  ` + notifyCancelled("cancelled", "$3::text", "$2::text") + `
)
select ` + jobColumns + ` from cancelled j where (select count(*) from notified) >= 0`)
}

// notifyCancelled is the select that tells the worker holding each
// cancelled row of from (a lock younger than the 4-hour expiry) to cancel
// it: a cancelRequest on cancelChannel, with schema and reason as the SQL
// expressions given. CancelJob and CancelMatching both send it.
func notifyCancelled(from, schema, reason string) string {
	return `select pg_notify('` + cancelChannel + `', json_build_object('schema', ` + schema +
		`, 'id', c.id, 'worker', c.locked_by, 'reason', ` + reason + `)::text)
  from ` + from + ` c
  where c.locked_by is not null and c.locked_at > now() - interval '4 hours'`
}
