package interop_test

import (
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gworker/gworker/core"
)

// TestFailuresMatchNode fails the same jobs on each side and compares what
// the failures leave: attempts, last_error, the lock released on the job
// and its queue, and run_at pushed back by exp(attempts) seconds from the
// moment of the failure. Schema N's jobs fail first on Node, then on
// gworker; schema G's the other way round, so each side also fails a job
// the other failed before. A job with max_attempts 1 is permanently failed
// by its first failure, and must then look the same on both schemas and be
// left alone by the other side's worker.
func TestFailuresMatchNode(t *testing.T) {
	t.Parallel()
	e := setup(t, 2*time.Minute)
	const message = "boom: the task failed"
	schemas := map[string]string{"node-first": schemaName(), "go-first": schemaName()}
	for _, s := range schemas {
		e.goMigrate(t, s)
		u := e.utils(t, s)
		for _, spec := range []core.JobSpec{{}, {QueueName: "qf"}, {MaxAttempts: 1, Priority: -1}} {
			if _, err := u.AddRawJob(e.ctx, "fails", map[string]any{"queue": spec.QueueName, "max": spec.MaxAttempts}, &spec); err != nil {
				t.Fatal(err)
			}
		}
	}

	// runOnce runs side's worker until nothing is runnable and returns the
	// runs and when it came back.
	runOnce := func(side, schema string) ([]run, time.Time) {
		rec := newRecorder()
		if side == "node" {
			a := e.startAgent(t, "worker", map[string]any{"schema": schema, "once": true,
				"tasks": map[string]any{"fails": map[string]any{"fail": message}}}, rec)
			a.expect(e.ctx, "stopped")
			a.finish(e.ctx)
		} else {
			g := e.newGoWorker(t, schema, goWorkerConfig{tasks: map[string]string{"fails": message}}, rec)
			if err := g.w.RunOnce(e.ctx); err != nil {
				t.Fatalf("gworker RunOnce: %v", err)
			}
		}
		return rec.all(), time.Now()
	}

	for round, sides := range [][2]string{{"node", "go"}, {"go", "node"}} {
		attempt := round + 1
		views := map[string][]string{}
		for i, order := range []string{"node-first", "go-first"} {
			schema, side := schemas[order], sides[i]
			runs, returned := runOnce(side, schema)
			wantRuns := 3
			if attempt == 2 {
				wantRuns = 2 // the permanently failed job is left alone
			}
			if len(runs) != wantRuns {
				t.Fatalf("attempt %d on %s's worker (%s schema): %d runs, want %d: %+v", attempt, side, order, len(runs), wantRuns, runs)
			}
			ended := map[int64]int64{}
			for _, r := range runs {
				if r.Attempts != attempt {
					t.Errorf("%s's handler saw attempts %d, want %d", side, r.Attempts, attempt)
				}
				ended[r.ID] = r.End
			}
			// run_at is greatest(now(), run_at) + exp(attempts) seconds, with
			// now() the moment of the failing statement: after the handler
			// ended and before the worker came back.
			backoff := time.Duration(math.Exp(float64(attempt)) * float64(time.Second))
			for id, end := range ended {
				var runAt time.Time
				if err := e.pool.QueryRow(e.ctx, "select run_at from "+q(schema)+"._private_jobs where id = $1", id).Scan(&runAt); err != nil {
					t.Fatal(err)
				}
				earliest := time.UnixMicro(end).Add(backoff - 5*time.Millisecond)
				latest := returned.Add(backoff + 5*time.Millisecond)
				if runAt.Before(earliest) || runAt.After(latest) {
					t.Errorf("%s failed job %d (attempt %d) with run_at %s after the handler ended at %s: want the failure's now() + %s (between %s and %s)",
						side, id, attempt, runAt.Format(time.RFC3339Nano), time.UnixMicro(end).Format(time.RFC3339Nano), backoff, earliest.Format(time.RFC3339Nano), latest.Format(time.RFC3339Nano))
				}
			}
			views[order] = e.failedRows(t, schema)
			if locked := e.queryInt(t, "select count(*) from "+q(schema)+"._private_job_queues where locked_at is not null or locked_by is not null"); locked != 0 {
				t.Errorf("%s left %d queue(s) locked after failing their jobs", side, locked)
			}
		}
		if d := diffRows(views["node-first"], views["go-first"]); d != "" {
			t.Errorf("attempt %d: jobs failed by %s (want) and by %s (got) differ:\n%s", attempt, sides[0], sides[1], d)
		}
		for _, row := range views["node-first"] {
			if !strings.Contains(row, "last_error="+message+" ") {
				t.Errorf("attempt %d: last_error is not the error's message %q: %s", attempt, message, row)
			}
		}
		// Make the jobs due again for the next attempt.
		for _, s := range schemas {
			e.exec(t, "update "+q(s)+"._private_jobs set run_at = now()")
		}
	}
}

// failedRows describes the jobs of schema field by field, leaving out run_at
// (checked against the failure time instead) and ids.
func (e *env) failedRows(t *testing.T, schema string) []string {
	t.Helper()
	rows, err := e.pool.Query(e.ctx, fmt.Sprintf(`
		select format('task=%%s queue=%%s payload=%%s priority=%%s attempts=%%s max_attempts=%%s last_error=%%s key=%%s locked_at=%%s locked_by=%%s revision=%%s flags=%%s available=%%s updated=%%s',
			t.identifier, coalesce(qu.queue_name, '(null)'), j.payload::jsonb, j.priority, j.attempts, j.max_attempts,
			coalesce(j.last_error, '(null)'), coalesce(j.key, '(null)'), coalesce(j.locked_at::text, '(null)'),
			coalesce(j.locked_by, '(null)'), j.revision, coalesce(j.flags::text, '(null)'), j.is_available,
			case when j.updated_at > j.created_at then 'later' else 'at-creation' end)
		from %[1]s._private_jobs j
		join %[1]s._private_tasks t on t.id = j.task_id
		left join %[1]s._private_job_queues qu on qu.id = j.job_queue_id
		order by j.id`, q(schema)))
	if err != nil {
		t.Fatal(err)
	}
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return out
}
