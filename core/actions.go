package core

import (
	"context"
	"errors"
	"fmt"
	"math"
	mathrand "math/rand/v2"
	"strconv"
	"time"
)

// DefaultActionBatchSize is how many jobs one statement of an action on a
// JobSelection changes when BatchSize is 0.
const DefaultActionBatchSize = 1000

// maxResultIDs caps ActionResult.IDs.
const maxResultIDs = 1000

// JobSelection says which jobs an action (RetryJobs, RunNowMatching,
// RescheduleMatching, CompleteMatching, FailMatching, RemoveMatching,
// CancelMatching) changes: the jobs with the given IDs, everything Filter
// matches, or, with both, the jobs among IDs that Filter matches. One of
// them must be set; an empty Filter (&JobFilter{}) selects every job.
//
// The action runs in batches of BatchSize jobs, in id order, each batch
// one statement (its own transaction, or a statement of the caller's
// transaction for a Utils made by WithTx), so no statement locks more than
// BatchSize rows. A job that stops matching between batches is left
// alone; one that starts matching is taken if its id is still ahead.
type JobSelection struct {
	// IDs are job ids.
	IDs []int64
	// Filter selects jobs; nil means IDs alone.
	Filter *JobFilter
	// BatchSize is how many jobs one statement changes; 0 means
	// DefaultActionBatchSize.
	BatchSize int
	// DryRun counts what the action would touch and changes nothing.
	DryRun bool
}

// ActionResult is what an action on a JobSelection did.
type ActionResult struct {
	// Matched is how many jobs the selection matched (with DryRun, how
	// many match now).
	Matched int64
	// Changed is how many the action changed; 0 with DryRun.
	Changed int64
	// Skipped is how many matched jobs were left alone: jobs a worker
	// holds (locked less than 4 hours ago, graphile-worker's rule), jobs
	// another transaction was changing at that moment, and for
	// CancelMatching jobs already permanently failed. With DryRun, how
	// many would be skipped now.
	Skipped int64
	// IDs are the ids of the changed jobs, in id order, at most the first
	// 1000 (for display).
	IDs []int64
}

// RescheduleSpec says what RescheduleMatching changes; nil fields are
// kept. At least one must be set.
type RescheduleSpec struct {
	// RunAt is the new earliest run time.
	RunAt *time.Time
	// Priority is the new priority, -32768..32767 (lower runs first).
	Priority *int
	// Attempts is the new attempt count, 0..32767; 0 gives the job all
	// its attempts again.
	Attempts *int
	// MaxAttempts is the new maximum, 1..32767.
	MaxAttempts *int
}

// unlockedJob is graphile-worker's condition for changing a job from the
// outside (complete_jobs, permanently_fail_jobs, reschedule_jobs): nobody
// holds it, or its lock has expired (4 hours).
const unlockedJob = "(j.locked_at is null or j.locked_at < now() - interval '4 hours')"

// action is one change applied batch by batch.
type action struct {
	name string
	// eligible: the condition on j for a matched job to be changed.
	eligible string
	// change returns the data-modifying statement for the ids in the CTE
	// "picked", returning j.id and (as runnable) whether the job may run
	// now, and adds its arguments to a. Every column it writes is j's.
	change func(r renderer, a *sqlArgs) string
	// notify, when set, returns an extra select over the CTE "changed"
	// that sends notifications, adding its arguments to a.
	notify func(a *sqlArgs) string
}

// RetryJobs makes the selected jobs run again now: attempts back to 0 and
// run_at now, even for permanently failed ones; last_error stays as the
// record of the last failure. Jobs a worker holds are skipped; an expired
// lock (older than 4 hours) is freed. Workers are woken up (NOTIFY
// jobs:insert, as when jobs are added).
func (u *Utils) RetryJobs(ctx context.Context, sel JobSelection) (ActionResult, error) {
	return u.runAction(ctx, sel, runNow("retry jobs", "0"))
}

// RunNowMatching makes the selected jobs run now, in one statement per
// batch: run_at now for each; a permanently failed job (no attempts left)
// also gets its attempts back (0), as RetryJobs gives them, while a job
// with attempts left keeps its count. last_error stays. Jobs a worker
// holds are skipped; an expired lock (older than 4 hours) is freed.
// Workers are woken up (NOTIFY jobs:insert).
func (u *Utils) RunNowMatching(ctx context.Context, sel JobSelection) (ActionResult, error) {
	return u.runAction(ctx, sel, runNow("run jobs now", "case when j.attempts >= j.max_attempts then 0 else j.attempts end"))
}

// runNow is the action of RetryJobs and RunNowMatching: run_at now and the
// lock freed, with attempts set to the SQL expression attempts.
func runNow(name, attempts string) action {
	return action{name: name, eligible: unlockedJob,
		change: func(r renderer, a *sqlArgs) string {
			return r.render(`update {{schema}}._private_jobs as j
  set attempts = ` + attempts + `, run_at = now(), locked_at = null, locked_by = null, updated_at = now()
  from picked p where j.id = p.id
  returning j.id, true as runnable`)
		}}
}

// RescheduleMatching changes run_at, priority, attempts and max attempts
// of the selected jobs, as RescheduleJobs does for a list of ids. Jobs a
// worker holds are skipped; an expired lock is freed. Workers are woken up
// when some changed job may run now.
func (u *Utils) RescheduleMatching(ctx context.Context, sel JobSelection, spec RescheduleSpec) (ActionResult, error) {
	if spec.RunAt == nil && spec.Priority == nil && spec.Attempts == nil && spec.MaxAttempts == nil {
		return ActionResult{}, &ValidationError{Field: "RescheduleSpec", Reason: "changes nothing; set RunAt, Priority, Attempts or MaxAttempts"}
	}
	check := func(field string, v *int, lo, hi int) error {
		if v != nil && (*v < lo || *v > hi) {
			return &ValidationError{Field: "RescheduleSpec." + field, Value: *v, Reason: fmt.Sprintf("must be between %d and %d", lo, hi)}
		}
		return nil
	}
	if err := errors.Join(
		check("Priority", spec.Priority, math.MinInt16, math.MaxInt16),
		check("Attempts", spec.Attempts, 0, math.MaxInt16),
		check("MaxAttempts", spec.MaxAttempts, 1, math.MaxInt16),
	); err != nil {
		return ActionResult{}, err
	}
	var runAt any
	if spec.RunAt != nil {
		runAt = *spec.RunAt
	}
	return u.runAction(ctx, sel, action{name: "reschedule jobs", eligible: unlockedJob,
		change: func(r renderer, a *sqlArgs) string {
			return r.render(`update {{schema}}._private_jobs as j
  set run_at = coalesce(` + a.add(runAt, "timestamptz") + `, j.run_at),
      priority = coalesce(` + a.add(optInt32(spec.Priority), "int") + `::smallint, j.priority),
      attempts = coalesce(` + a.add(optInt32(spec.Attempts), "int") + `::smallint, j.attempts),
      max_attempts = coalesce(` + a.add(optInt32(spec.MaxAttempts), "int") + `::smallint, j.max_attempts),
      locked_at = null, locked_by = null, updated_at = now()
  from picked p where j.id = p.id
  returning j.id, j.run_at <= now() and j.attempts < j.max_attempts as runnable`)
		}})
}

// CompleteMatching deletes the selected jobs as if they had succeeded, as
// CompleteJobs does for a list of ids. Jobs a worker holds are skipped.
func (u *Utils) CompleteMatching(ctx context.Context, sel JobSelection) (ActionResult, error) {
	return u.runAction(ctx, sel, action{name: "complete jobs", eligible: unlockedJob, change: deletePicked})
}

// RemoveMatching deletes the selected jobs. Jobs a worker holds are
// skipped (RemoveJob, by key, takes the key from a running job instead).
func (u *Utils) RemoveMatching(ctx context.Context, sel JobSelection) (ActionResult, error) {
	return u.runAction(ctx, sel, action{name: "remove jobs", eligible: unlockedJob, change: deletePicked})
}

func deletePicked(r renderer, _ *sqlArgs) string {
	return r.render(`delete from {{schema}}._private_jobs as j using picked p where j.id = p.id returning j.id, false as runnable`)
}

// FailMatching marks the selected jobs as permanently failed (attempts =
// max attempts) with reason as last_error ("" means graphile-worker's
// "Manually marked as failed"), as PermanentlyFailJobs does for a list of
// ids. Jobs a worker holds are skipped; an expired lock is freed.
func (u *Utils) FailMatching(ctx context.Context, sel JobSelection, reason string) (ActionResult, error) {
	return u.runAction(ctx, sel, action{name: "fail jobs", eligible: unlockedJob,
		change: func(r renderer, a *sqlArgs) string {
			return r.render(`update {{schema}}._private_jobs as j
  set attempts = j.max_attempts, last_error = coalesce(` + a.add(nullString(reason), "text") + `, 'Manually marked as failed'),
      locked_at = null, locked_by = null, updated_at = now()
  from picked p where j.id = p.id
  returning j.id, false as runnable`)
		}})
}

// CancelMatching cancels the selected jobs as CancelJob does each one:
// permanently failed with "Cancelled: reason" as last_error, and the
// worker running one told to cancel its handler. Unlike the other actions
// it takes running jobs; it skips jobs already permanently failed (their
// last_error is kept).
func (u *Utils) CancelMatching(ctx context.Context, sel JobSelection, reason string) (ActionResult, error) {
	msg := cancelMessage(reason)
	return u.runAction(ctx, sel, action{name: "cancel jobs", eligible: "not (j.locked_at is null and j.attempts >= j.max_attempts)",
		change: func(r renderer, a *sqlArgs) string {
			return r.render(`update {{schema}}._private_jobs as j
  set attempts = j.max_attempts, last_error = ` + a.add(msg, "text") + `, updated_at = now()
  from picked p where j.id = p.id
  returning j.id, false as runnable, j.locked_by, j.locked_at, j.last_error`)
		},
		// As CancelJob: the holder of a live lock is told.
		notify: func(a *sqlArgs) string {
			return notifyCancelled("changed", a.add(u.schema, "text"), "c.last_error")
		},
	})
}

// runAction validates sel and runs act over it, batch by batch.
func (u *Utils) runAction(ctx context.Context, sel JobSelection, act action) (ActionResult, error) {
	if sel.IDs == nil && sel.Filter == nil {
		return ActionResult{}, &ValidationError{Field: "JobSelection", Reason: "selects nothing; give IDs or a Filter (&JobFilter{} selects every job)"}
	}
	batch := sel.BatchSize
	switch {
	case batch == 0:
		batch = DefaultActionBatchSize
	case batch < 0:
		return ActionResult{}, &ValidationError{Field: "JobSelection.BatchSize", Value: batch, Reason: "must not be negative"}
	}
	var f JobFilter
	if sel.Filter != nil {
		f = *sel.Filter
		if err := f.Validate(); err != nil {
			return ActionResult{}, err
		}
	}
	if sel.IDs != nil && len(sel.IDs) == 0 {
		return ActionResult{}, nil // an empty list of ids selects no job
	}
	r := newRenderer(u.schema)
	var res ActionResult
	if sel.DryRun {
		var a sqlArgs
		where := f.where(r, &a)
		if sel.IDs != nil {
			where += " and j.id = any(" + a.add(sel.IDs, "bigint[]") + ")"
		}
		var eligible int64
		if _, err := queryOne(ctx, u.ex, "select count(*), count(*) filter (where "+act.eligible+") from "+r.quoted+"._private_jobs j where "+where,
			a, &res.Matched, &eligible); err != nil {
			return ActionResult{}, fmt.Errorf("gworker: %s (dry run): %w", act.name, err)
		}
		res.Skipped = res.Matched - eligible
		return res, nil
	}
	after := int64(math.MinInt64)
	for {
		var a sqlArgs
		where := f.where(r, &a)
		if sel.IDs != nil {
			where += " and j.id = any(" + a.add(sel.IDs, "bigint[]") + ")"
		}
		// batch: the next ids that match, in id order, read without
		// locking (the limit is a literal, as in ListJobs, so that a
		// cached generic plan still walks the primary key); picked: those of them still matching and eligible,
		// locked (a row another transaction is changing is skipped), and
		// checked again on the newest row version under the lock.
		sql := `with batch as (
  select j.id from ` + r.quoted + `._private_jobs j
  where ` + where + ` and j.id > ` + a.add(after, "bigint") + `
  order by j.id limit ` + strconv.Itoa(batch) + `
), picked as (
  select j.id from ` + r.quoted + `._private_jobs j
  where j.id in (select id from batch) and ` + where + ` and ` + act.eligible + `
  for update of j skip locked
), changed as (
  ` + act.change(r, &a) + `
), woken as (
  select pg_notify('jobs:insert', '{"r":' || ` + a.add(mathrand.Float64(), "float8") + `::text || ',"count":' || n::text || '}')
  from (select count(*) as n from changed where runnable) c where c.n > 0
)`
		final := `select (select count(*) from batch), coalesce((select max(id) from batch), 0),
  array(select id from changed order by id), (select count(*) from woken)`
		if act.notify != nil {
			sql += `, told as (
  ` + act.notify(&a) + `
)`
			final += ", (select count(*) from told)"
		} else {
			final += ", 0"
		}
		sql += "\n" + final
		matched, last, ids, err := u.actionBatch(ctx, sql, a)
		if err != nil {
			return res, fmt.Errorf("gworker: %s: %w", act.name, err)
		}
		res.Matched += matched
		res.Changed += int64(len(ids))
		res.Skipped += matched - int64(len(ids))
		for _, id := range ids {
			if len(res.IDs) < maxResultIDs {
				res.IDs = append(res.IDs, id)
			}
		}
		if matched < int64(batch) {
			return res, nil
		}
		after = last
	}
}

// actionBatch runs one batch statement, which returns one row: the
// batch's match count and last id, and the changed jobs' ids.
func (u *Utils) actionBatch(ctx context.Context, sql string, args []any) (matched, last int64, ids []int64, err error) {
	var woken, told int64
	if _, err := queryOne(ctx, u.ex, sql, args, &matched, &last, &ids, &woken, &told); err != nil {
		return 0, 0, nil, err
	}
	return matched, last, ids, nil
}
