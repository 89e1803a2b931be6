package core

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"sync"
	"time"
)

// ThroughputBucket is the width of the time buckets of throughput counts.
// Workers add their counts with each heartbeat into the bucket of the
// database's clock at that moment, so with the default heartbeat interval
// a bucket holds what was counted over the preceding 30 seconds or so.
const ThroughputBucket = time.Minute

// DefaultThroughputWindow is how far back Throughput reads when no window
// is given.
const DefaultThroughputWindow = time.Hour

// throughputCounter counts the jobs a worker finished per task since its
// last heartbeat. Handlers finish on many goroutines, hence the mutex; the
// map stays as small as the worker's set of tasks.
type throughputCounter struct {
	mu     sync.Mutex
	counts map[string]*[2]int64 // task identifier → completed, failed
}

// add counts a job of task that completed, or failed (cancelled, or an
// attempt that counts). Worker.finish calls it where it decides the outcome;
// an interrupted, skipped or snoozed job is not counted: it runs again.
func (c *throughputCounter) add(task string, failed bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.counts == nil {
		c.counts = map[string]*[2]int64{}
	}
	n := c.counts[task]
	if n == nil {
		n = new([2]int64)
		c.counts[task] = n
	}
	if failed {
		n[1]++
	} else {
		n[0]++
	}
}

// take returns the counts and starts again from zero.
func (c *throughputCounter) take() map[string]*[2]int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	m := c.counts
	c.counts = nil
	return m
}

// putBack adds counts that could not be written to the current ones, so
// that a heartbeat lost to an outage hands them to the next.
func (c *throughputCounter) putBack(m map[string]*[2]int64) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.counts == nil {
		c.counts = map[string]*[2]int64{}
	}
	for task, n := range m {
		cur := c.counts[task]
		if cur == nil {
			cur = new([2]int64)
			c.counts[task] = cur
		}
		cur[0] += n[0]
		cur[1] += n[1]
	}
}

// writeThroughput adds the counts since the last call to the schema's
// throughput table, in one statement that also drops rows older than a
// day. It runs with each heartbeat and at shutdown. Counts that fail to
// be written are kept for the next call, except on a schema without the
// table (migrated by an older gworker, run with SkipMigrate), where
// there is nowhere to put them. sql is writeThroughputSQL, rendered for
// the schema (recoverySQL's).
func (w *Worker) writeThroughput(ctx context.Context, sql string) {
	m := w.throughput.take()
	if len(m) == 0 {
		return
	}
	tasks := make([]string, 0, len(m))
	for task := range m {
		tasks = append(tasks, task)
	}
	sort.Strings(tasks)
	completed := make([]int64, len(tasks))
	failed := make([]int64, len(tasks))
	for i, task := range tasks {
		completed[i], failed[i] = m[task][0], m[task][1]
	}
	_, err := w.db.Exec(ctx, sql, w.id, tasks, completed, failed)
	switch {
	case err == nil:
	case isUndefined(err):
		w.log.Debug("gworker: no throughput table in the schema (gworker migration 3); counts dropped", slog.Any("error", err))
	default:
		w.throughput.putBack(m)
	}
}

// writeThroughputSQL: $1 worker id, $2 task identifiers, $3 completed and
// $4 failed counts, in step.
const writeThroughputSQL = `with pruned as (
  delete from {{schema}}._private_gworker_throughput where bucket < now() - interval '1 day'
)
insert into {{schema}}._private_gworker_throughput as t (bucket, worker_id, task_identifier, completed, failed)
select date_trunc('minute', now()), $1::text, c.task, c.completed, c.failed
from unnest($2::text[], $3::bigint[], $4::bigint[]) as c(task, completed, failed)
on conflict (bucket, worker_id, task_identifier) do update
  set completed = t.completed + excluded.completed, failed = t.failed + excluded.failed`

// ThroughputPoint is what one worker finished of one task in one bucket.
type ThroughputPoint struct {
	// Bucket is the start of the bucket (ThroughputBucket wide).
	Bucket    time.Time
	WorkerID  string
	Task      string
	Completed int64
	Failed    int64
}

// Throughput is what gworker workers finished over a window of time.
type Throughput struct {
	// Now is the database's clock when it was read; the window ends there.
	Now time.Time
	// Since is where the window starts (a bucket's start).
	Since time.Time
	// Points are ordered by bucket, worker and task; buckets where a
	// worker finished nothing have no point.
	Points []ThroughputPoint
}

// Throughput returns the jobs gworker workers completed and failed per
// worker, task and minute over the last window (0 means
// DefaultThroughputWindow), from the counts workers add to the schema's
// throughput table with their heartbeats; it holds a day. Counts arrive a
// heartbeat interval late, and graphile-worker (Node) workers do not count.
func (u *Utils) Throughput(ctx context.Context, window time.Duration) (Throughput, error) {
	switch {
	case window == 0:
		window = DefaultThroughputWindow
	case window < 0:
		return Throughput{}, &ValidationError{Field: "window", Value: window, Reason: "must not be negative"}
	}
	var out Throughput
	if _, err := queryOne(ctx, u.ex, "select now(), date_trunc('minute', now() - $1::float8 * interval '1 second')",
		[]any{window.Seconds()}, &out.Now, &out.Since); err != nil {
		return Throughput{}, fmt.Errorf("gworker: throughput: %w", err)
	}
	rows, err := u.ex.Query(ctx, newRenderer(u.schema).render(`select bucket, worker_id, task_identifier, completed, failed
from {{schema}}._private_gworker_throughput where bucket >= $1::timestamptz
order by bucket, worker_id, task_identifier`), out.Since)
	if err != nil {
		return Throughput{}, fmt.Errorf("gworker: throughput%s: %w", u.noRegistryHint(err), err)
	}
	defer rows.Close()
	for rows.Next() {
		var p ThroughputPoint
		if err := rows.Scan(&p.Bucket, &p.WorkerID, &p.Task, &p.Completed, &p.Failed); err != nil {
			return Throughput{}, fmt.Errorf("gworker: throughput: %w", err)
		}
		out.Points = append(out.Points, p)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return Throughput{}, fmt.Errorf("gworker: throughput: %w", err)
	}
	return out, nil
}
