package core

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	mathrand "math/rand/v2"
	"time"
)

// CopyFromer is an optional capability of a Transaction (or of an Executor
// wrapping the caller's transaction): loading rows with COPY FROM STDIN.
// BulkAddJobs uses it when the transaction it runs in has it, and one
// INSERT otherwise. pgxdriver implements it.
type CopyFromer interface {
	// CopyFrom copies rows into the columns of schema.table (names as they
	// are, unquoted) and returns how many rows it copied. Values are
	// int16, int32, time.Time, json.RawMessage (json and jsonb) or nil for
	// NULL. An executor that cannot COPY after all returns an error
	// matching ErrCopyUnsupported, before sending anything.
	CopyFrom(ctx context.Context, schema, table string, columns []string, rows [][]any) (int64, error)
}

// ErrCopyUnsupported is returned (wrapped) by CopyFromer.CopyFrom when the
// executor cannot COPY; BulkAddJobs then inserts instead.
var ErrCopyUnsupported = errors.New("gworker: this executor cannot COPY")

// BulkAddJobs adds many keyless jobs as fast as the database allows and
// returns how many it added. The rows, and the one jobs:insert
// notification, are those AddJobs would give; the jobs themselves are not
// read back. With a driver that can COPY (pgxdriver) it takes three round
// trips in one transaction: task and queue ids, COPY, NOTIFY; otherwise one
// INSERT. A job with a JobKey is refused: keys need add_jobs' rules, so add
// those with AddJobs. With BeforeSchedule, AroundAdd or OnEvent hooks it
// goes through AddJobs, so that they see every job.
func (u *Utils) BulkAddJobs(ctx context.Context, jobs []NewJob) (int, error) {
	if len(jobs) == 0 {
		return 0, nil
	}
	for i, j := range jobs {
		if j.Spec.JobKey != "" {
			return 0, &ValidationError{Field: fmt.Sprintf("jobs[%d].Spec.JobKey", i), Value: j.Spec.JobKey,
				Reason: "BulkAddJobs adds keyless jobs only; add jobs with keys with AddJobs"}
		}
	}
	if u.hooks.schedules() {
		added, err := u.AddJobs(ctx, jobs)
		return len(added), err
	}
	specs, _, _, err := checkNewJobs(jobs)
	if err != nil {
		return 0, err
	}
	n, err := u.copyJobs(ctx, specs)
	if errors.Is(err, ErrCopyUnsupported) {
		n, err = u.ex.Exec(ctx, u.sql.addJobsCount, keylessArgs(specs)...)
	}
	if err != nil {
		return 0, fmt.Errorf("gworker: bulk add %d jobs: %w", len(jobs), err)
	}
	return int(n), nil
}

// copyJobs adds the jobs with COPY, in a transaction of its own or the
// caller's. It returns an error matching ErrCopyUnsupported, having changed
// nothing, when the transaction cannot COPY.
func (u *Utils) copyJobs(ctx context.Context, specs []specJSON) (n int64, err error) {
	ex := u.ex
	if u.db != nil {
		tx, err := u.db.Begin(ctx)
		if err != nil {
			return 0, err
		}
		defer func() {
			if err == nil {
				err = tx.Commit(ctx)
			} else {
				err = errors.Join(err, tx.Rollback(context.WithoutCancel(ctx)))
			}
		}()
		ex = tx
	}
	c, ok := ex.(CopyFromer)
	if !ok {
		return 0, ErrCopyUnsupported
	}
	tasks, queues, now, err := u.bulkNames(ctx, ex, specs)
	if err != nil {
		return 0, err
	}
	rows := make([][]any, len(specs))
	for i, s := range specs {
		var queue any
		if s.QueueName != nil {
			queue = queues[*s.QueueName]
		}
		runAt := now
		if s.RunAt != nil {
			runAt = *s.RunAt
		}
		maxAttempts := int16(25)
		if s.MaxAttempts != nil {
			maxAttempts = int16(*s.MaxAttempts)
		}
		var flags any
		if len(s.Flags) > 0 {
			flags = flagsJSON(s.Flags)
		}
		rows[i] = []any{queue, tasks[s.Identifier], s.Payload, runAt, maxAttempts, int16(s.Priority), flags}
	}
	n, err = c.CopyFrom(ctx, u.schema, "_private_jobs",
		[]string{"job_queue_id", "task_id", "payload", "run_at", "max_attempts", "priority", "flags"}, rows)
	if err != nil {
		return 0, err
	}
	payload := fmt.Sprintf(`{"r":%v,"count":%d}`, mathrand.Float64(), n)
	if _, err := ex.Exec(ctx, "select pg_notify('jobs:insert', $1)", payload); err != nil {
		return 0, err
	}
	return n, nil
}

// bulkNames creates the tasks and queues the jobs name, where missing, and
// returns every id and the transaction's now(): the run_at of jobs that set
// none, as the column default would give them.
func (u *Utils) bulkNames(ctx context.Context, ex Executor, specs []specJSON) (tasks, queues map[string]int32, now time.Time, err error) {
	tasks, queues = map[string]int32{}, map[string]int32{}
	var taskNames, queueNames []string
	for _, s := range specs {
		if _, ok := tasks[s.Identifier]; !ok {
			tasks[s.Identifier] = 0
			taskNames = append(taskNames, s.Identifier)
		}
		if s.QueueName != nil {
			if _, ok := queues[*s.QueueName]; !ok {
				queues[*s.QueueName] = 0
				queueNames = append(queueNames, *s.QueueName)
			}
		}
	}
	if queueNames == nil {
		queueNames = []string{}
	}
	rows, err := ex.Query(ctx, u.sql.bulkNames, taskNames, queueNames)
	if err != nil {
		return nil, nil, now, err
	}
	defer rows.Close()
	for rows.Next() {
		var kind, name string
		var id int64
		if err := rows.Scan(&kind, &id, &name, &now); err != nil {
			return nil, nil, now, err
		}
		if kind == "t" {
			tasks[name] = int32(id)
		} else {
			queues[name] = int32(id)
		}
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return nil, nil, now, err
	}
	for name, id := range tasks {
		if id == 0 {
			return nil, nil, now, fmt.Errorf("task %q has no id after creating it", name)
		}
	}
	for name, id := range queues {
		if id == 0 {
			return nil, nil, now, fmt.Errorf("queue %q has no id after creating it", name)
		}
	}
	return tasks, queues, now, nil
}

// flagsJSON is graphile-worker's form of job flags: {"flag": true, ...}.
func flagsJSON(flags []string) json.RawMessage {
	m := make(map[string]bool, len(flags))
	for _, f := range flags {
		m[f] = true
	}
	b, _ := json.Marshal(m) // a map of strings to bools always encodes
	return b
}

// bulkNamesSQL creates missing tasks ($1) and queues ($2) and returns
// (kind 't' or 'q', id, name, now()) for each. A name another session
// creates at the same moment comes back through ON CONFLICT DO UPDATE.
// Names are inserted in order, so that two sessions adding the same new
// names cannot deadlock.
const bulkNamesSQL = `with new_tasks as (
  insert into {{schema}}._private_tasks (identifier)
  select i from unnest($1::text[]) i
  where not exists (select 1 from {{schema}}._private_tasks t where t.identifier = i)
  order by i
  on conflict (identifier) do update set identifier = excluded.identifier
  returning id, identifier
), new_queues as (
  insert into {{schema}}._private_job_queues (queue_name)
  select q from unnest($2::text[]) q
  where not exists (select 1 from {{schema}}._private_job_queues jq where jq.queue_name = q)
  order by q
  on conflict (queue_name) do update set queue_name = excluded.queue_name
  returning id, queue_name
)
select 't', t.id::bigint, t.identifier, now() from {{schema}}._private_tasks t where t.identifier = any($1::text[])
union all select 't', n.id::bigint, n.identifier, now() from new_tasks n
union all select 'q', q.id::bigint, q.queue_name, now() from {{schema}}._private_job_queues q where q.queue_name = any($2::text[])
union all select 'q', n.id::bigint, n.queue_name, now() from new_queues n`
