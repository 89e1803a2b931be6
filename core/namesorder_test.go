package core_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/gworker/gworker/core"
	"github.com/gworker/gworker/internal/testkit"
)

// Two workers starting together, or two adds of the same new task or queue
// names, deadlocked when each inserted the names in its own order (a
// worker's tasks came from a map). Each statement that creates several
// names must insert them in order.
//
// The check: another transaction holds the first name, uncommitted; the
// statement under test, given the names in another order, must block on
// that name before it inserts any other. While it waits, an insert of each
// other name must not wait for it.
func TestNewNamesAreInsertedInOrder(t *testing.T) {
	t.Parallel()
	names := func(prefix string) []string {
		var out []string
		// Last first: given out of order. Thirty of them, so that a worker
		// whose tasks came in map order would start with the first name
		// held by chance once in thirty starts only.
		for i := 29; i >= 0; i-- {
			out = append(out, fmt.Sprintf("%s%02d", prefix, i))
		}
		return out
	}
	noop := func(context.Context, *core.Job) error { return nil }
	jobs := func(tasks, queues []string) []core.NewJob {
		var out []core.NewJob
		for i, task := range tasks {
			j := core.NewJob{Identifier: task}
			if queues != nil {
				j.Spec.QueueName = queues[i]
			}
			out = append(out, j)
		}
		return out
	}
	for _, c := range []struct {
		name  string
		table string // tasks or job_queues
		// run runs the statement under test in a worker's or client's
		// schema, with names as task or queue names as table says.
		run func(b *bundle, names []string) error
	}{
		{"worker start", "tasks", func(b *bundle, names []string) error {
			var tasks []core.Task
			for _, n := range names {
				tasks = append(tasks, core.RawTask(n, noop))
			}
			w, err := core.NewWorker(core.WorkerOptions{Database: b.db, Schema: b.schema, Tasks: tasks, SkipMigrate: true,
				Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				return err
			}
			return w.RunOnce(b.ctx)
		}},
		{"AddJobs, tasks", "tasks", func(b *bundle, names []string) error {
			_, err := b.utils.AddJobs(b.ctx, jobs(names, nil))
			return err
		}},
		{"AddJobs, queues", "job_queues", func(b *bundle, names []string) error {
			_, err := b.utils.AddJobs(b.ctx, jobs(oneTask(len(names)), names))
			return err
		}},
		{"BulkAddJobs, tasks", "tasks", func(b *bundle, names []string) error {
			_, err := b.utils.BulkAddJobs(b.ctx, jobs(names, nil))
			return err
		}},
		{"BulkAddJobs, queues", "job_queues", func(b *bundle, names []string) error {
			_, err := b.utils.BulkAddJobs(b.ctx, jobs(oneTask(len(names)), names))
			return err
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			col := map[string]string{"tasks": "identifier", "job_queues": "queue_name"}[c.table]
			given := names(map[string]string{"tasks": "task_", "job_queues": "queue_"}[c.table])
			if c.table == "job_queues" {
				b.exec(t, "insert into S._private_tasks (identifier) values ('t')") // the jobs' task, there already
			}
			insert := b.sql(fmt.Sprintf("insert into S._private_%s (%s) values ($1) on conflict do nothing", c.table, col))

			holder, err := b.pool.Begin(b.ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = holder.Rollback(context.WithoutCancel(b.ctx)) }()
			first := given[len(given)-1]
			if _, err := holder.Exec(b.ctx, insert, first); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- c.run(b, given) }()
			// It waits for the holder's transaction.
			testkit.Eventually(t, "the statement to wait for the first name", func() bool {
				select {
				case err := <-done:
					t.Fatalf("the statement returned while the first name was held: %v", err)
				default:
				}
				return b.queryInt(t, `select count(*) from pg_stat_activity
where wait_event_type = 'Lock' and query like '%' || $1 || '%' and pid <> pg_backend_pid()`, b.q) > 0
			})
			for _, n := range given[:len(given)-1] {
				if err := insertsWithoutWaiting(b, insert, n); err != nil {
					t.Errorf("%s %q: %v: the statement inserted it before %q, which it waits for", c.table, n, err, first)
				}
			}
			if err := holder.Commit(b.ctx); err != nil {
				t.Fatal(err)
			}
			if err := <-done; err != nil {
				t.Fatalf("after the holder committed: %v", err)
			}
			if n := b.queryInt(t, fmt.Sprintf("select count(*) from S._private_%s where %s like '%s%%'", c.table, col, first[:len(first)-2])); n != len(given) {
				t.Fatalf("%d %s rows, want %d", n, c.table, len(given))
			}
		})
	}
}

// oneTask is n times the task name "t".
func oneTask(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = "t"
	}
	return out
}

// insertsWithoutWaiting inserts name in a transaction it rolls back, and
// fails if the insert waits for another transaction's lock.
func insertsWithoutWaiting(b *bundle, insert, name string) error {
	tx, err := b.pool.Begin(b.ctx)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(b.ctx)) }()
	if _, err := tx.Exec(b.ctx, "set local lock_timeout = '100ms'"); err != nil {
		return err
	}
	_, err = tx.Exec(b.ctx, insert, name)
	var pe *pgconn.PgError
	if errors.As(err, &pe) && pe.Code == "55P03" {
		return fmt.Errorf("an insert of it waited %v for a lock", 100*time.Millisecond)
	}
	return err
}
