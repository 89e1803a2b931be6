// Command protoheld is a measurement, not a worker: a prototype of the
// "one open transaction holds the batch's locks" design that bench/README.md
// discusses, so that its A/B against core covers a Go worker's own CPU and
// not only the server's (the SQL-limit rows). Core does not have this design
// and this program is not a way to run jobs: it knows one no-op task, no
// named queues, no failures, no retries, no deadlines and no shutdown.
//
//	protoheld -c URL -s SCHEMA [-task noop] [-j 16] [-batch 500] [-timeout 10m]
//
// Each batch is one transaction on its own connection:
//
//	begin; select <the job columns core reads> ... for update skip locked limit BATCH
//	  (the task's jobs without a named queue, runnable now, in core's order)
//	... every job of the batch runs (a no-op handler on -j goroutines) ...
//	delete the batch's ids; commit (durable: the server's synchronous_commit)
//
// begin and select go in one round trip, delete and commit in another. No
// row is updated: the open transaction's row locks keep other fetches away
// (their SKIP LOCKED passes over them), and the delete makes the outcome
// final. The next batch's transaction is opened as soon as at most half a
// batch is left waiting in the local queue, as core's fetcher does, so the
// slots do not starve while a batch's last jobs run and it commits.
//
// It runs until a fetch finds no job, then waits for the open batches to
// commit, counts the rows left in the jobs table, and prints
//
//	jobs=RUNS seconds=S jobs_per_sec=R
//	distinct=D duplicates=X remaining=Y
//
// RUNS counts handler runs, D distinct job ids among them, X = RUNS - D
// and Y every row of the jobs table after the last commit. S runs from the
// first fetch (after connecting) to the last commit. It exits with an
// error after printing if X or Y is not 0.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gworker/gworker/bench/internal/heldsql"
)

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintf(os.Stderr, "protoheld: %v\n", err)
		os.Exit(1)
	}
}

// options is the command line.
type options struct {
	url, schema, task string
	jobs, batch       int
	timeout           time.Duration
}

func parse(args []string) (*options, error) {
	fs := flag.NewFlagSet("protoheld", flag.ContinueOnError)
	o := &options{}
	fs.StringVar(&o.url, "c", os.Getenv("DATABASE_URL"), "PostgreSQL connection string")
	fs.StringVar(&o.schema, "s", "graphile_worker", "graphile-worker schema")
	fs.StringVar(&o.task, "task", "noop", "the task identifier whose jobs run (no-op handler)")
	fs.IntVar(&o.jobs, "j", 16, "handler goroutines (slots)")
	fs.IntVar(&o.batch, "batch", 500, "jobs per fetch, each batch one transaction")
	fs.DurationVar(&o.timeout, "timeout", 10*time.Minute, "give up after this long")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}
	switch {
	case fs.NArg() > 0:
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	case o.url == "":
		return nil, errors.New("-c (or $DATABASE_URL) is required")
	case o.jobs < 1 || o.batch < 1:
		return nil, errors.New("-j and -batch must be positive")
	case o.timeout <= 0:
		return nil, errors.New("-timeout must be positive")
	}
	return o, nil
}

// statements are the prototype's two SQL texts for one schema.
type statements struct {
	fetch  string // $1 = task identifiers
	delete string // $1 = ids
}

func newStatements(schema string, batch int) statements {
	// The same columns core's fetch returns. Nothing is updated: the lock
	// is the claim.
	return statements{
		fetch: heldsql.Lock(schema, `j.id, j.job_queue_id, j.task_id, j.payload, j.priority, j.run_at, j.attempts, j.max_attempts, `+
			`j.last_error, j.created_at, j.updated_at, j.key, j.locked_at, j.locked_by, j.revision, j.flags`, "$1", batch),
		delete: heldsql.Delete(schema, "$1"),
	}
}

// job is one fetched row, read as core reads it (all of its columns).
type job struct {
	id          int64
	queueID     *int32
	taskID      int32
	payload     []byte
	priority    int16
	runAt       time.Time
	attempts    int16
	maxAttempts int16
	lastError   *string
	createdAt   time.Time
	updatedAt   time.Time
	key         *string
	lockedAt    *time.Time
	lockedBy    *string
	revision    int32
	flags       []byte
	batch       *batch
}

// batch is one open transaction and the jobs it holds.
type batch struct {
	conn *pgxpool.Conn
	jobs []job
	left atomic.Int64 // jobs not finished yet
}

// result is what a drain did.
type result struct {
	runs, distinct, duplicates int
	remaining                  int64
	seconds                    float64
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	o, err := parse(args)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	cfg, err := pgxpool.ParseConfig(o.url)
	if err != nil {
		return err
	}
	// One connection per open batch: the one whose last jobs run, the next
	// one fetched meanwhile, one committing, and a spare.
	cfg.MaxConns = 4
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return err
	}
	defer pool.Close()
	if err := pool.Ping(ctx); err != nil {
		return err
	}
	r, err := drain(ctx, pool, o)
	if err != nil {
		return err
	}
	if _, err := fmt.Fprintf(stdout, "jobs=%d seconds=%.3f jobs_per_sec=%.0f\ndistinct=%d duplicates=%d remaining=%d\n",
		r.runs, r.seconds, float64(r.runs)/r.seconds, r.distinct, r.duplicates, r.remaining); err != nil {
		return err
	}
	if r.duplicates != 0 || r.remaining != 0 {
		return fmt.Errorf("%d duplicate runs and %d rows left, want 0 and 0", r.duplicates, r.remaining)
	}
	return nil
}

// drain runs every runnable job of the task, batch by batch, each batch in
// one transaction that holds its rows' locks until it deletes them.
func drain(ctx context.Context, pool *pgxpool.Pool, o *options) (result, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	st := newStatements(o.schema, o.batch)
	tasks := []string{o.task}
	handler := func(*job) error { return nil }

	queue := make(chan *job, 2*o.batch) // the local queue
	wake := make(chan struct{}, 1)      // the queue fell to half a batch
	finished := make(chan *batch, 8)    // batches whose jobs all ran
	half := o.batch / 2

	// The slots: each records the ids it ran, merged at the end.
	ran := make([][]int64, o.jobs)
	var slots sync.WaitGroup
	for i := range ran {
		slots.Add(1)
		go func() {
			defer slots.Done()
			for j := range queue {
				if len(queue) <= half {
					select {
					case wake <- struct{}{}:
					default:
					}
				}
				if err := handler(j); err != nil {
					cancel(fmt.Errorf("job %d: %w", j.id, err))
				}
				ran[i] = append(ran[i], j.id)
				if j.batch.left.Add(-1) == 0 {
					finished <- j.batch
				}
			}
		}()
	}

	// The open batches, so that a failed run can give their connections
	// back (a batch whose jobs did not all run never reaches the committer).
	var openMu sync.Mutex
	open := map[*batch]struct{}{}
	defer func() {
		for b := range open {
			_ = b.conn.Conn().Close(context.WithoutCancel(ctx))
			b.conn.Release()
		}
	}()

	// The committer: delete a finished batch's jobs and commit its
	// transaction, one round trip.
	committed := make(chan struct{})
	go func() {
		defer close(committed)
		for b := range finished {
			openMu.Lock()
			delete(open, b)
			openMu.Unlock()
			if err := finish(ctx, b, st); err != nil {
				cancel(err)
			}
		}
	}()

	start := time.Now()
	err := func() error {
		defer close(queue)
		for {
			for len(queue) > half {
				select {
				case <-ctx.Done():
					return context.Cause(ctx)
				case <-wake:
				}
			}
			b, err := fetch(ctx, pool, st, tasks)
			if err != nil {
				return err
			}
			if b == nil {
				return nil // nothing runnable that no open batch holds
			}
			openMu.Lock()
			open[b] = struct{}{}
			openMu.Unlock()
			for i := range b.jobs {
				select {
				case queue <- &b.jobs[i]:
				case <-ctx.Done():
					return context.Cause(ctx)
				}
			}
		}
	}()
	if err != nil {
		cancel(err)
	}
	slots.Wait()
	close(finished)
	<-committed
	end := time.Now()
	if err := context.Cause(ctx); err != nil {
		return result{}, err
	}

	r := result{seconds: end.Sub(start).Seconds()}
	seen := make(map[int64]struct{}, 1<<16)
	for _, ids := range ran {
		r.runs += len(ids)
		for _, id := range ids {
			seen[id] = struct{}{}
		}
	}
	r.distinct = len(seen)
	r.duplicates = r.runs - r.distinct
	if err := pool.QueryRow(ctx, "select count(*) from "+pgx.Identifier{o.schema}.Sanitize()+"._private_jobs").Scan(&r.remaining); err != nil {
		return result{}, err
	}
	return r, nil
}

// fetch opens a batch's transaction and locks up to a batch of jobs in it,
// one round trip (begin and select in one pipeline). It returns nil, with
// the transaction ended, when no job was found.
func fetch(ctx context.Context, pool *pgxpool.Pool, st statements, tasks []string) (*batch, error) {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return nil, err
	}
	b := &batch{conn: conn}
	err = func() error {
		var q pgx.Batch
		q.Queue("begin")
		q.Queue(st.fetch, tasks)
		br := conn.SendBatch(ctx, &q)
		if _, err := br.Exec(); err != nil {
			br.Close()
			return err
		}
		rows, err := br.Query()
		if err != nil {
			br.Close()
			return err
		}
		for rows.Next() {
			b.jobs = append(b.jobs, job{})
			j := &b.jobs[len(b.jobs)-1]
			if err := rows.Scan(&j.id, &j.queueID, &j.taskID, &j.payload, &j.priority, &j.runAt, &j.attempts, &j.maxAttempts,
				&j.lastError, &j.createdAt, &j.updatedAt, &j.key, &j.lockedAt, &j.lockedBy, &j.revision, &j.flags); err != nil {
				rows.Close()
				br.Close()
				return err
			}
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			br.Close()
			return err
		}
		return br.Close()
	}()
	if err == nil && len(b.jobs) == 0 {
		_, err = conn.Exec(ctx, "rollback")
		if err == nil {
			conn.Release()
			return nil, nil
		}
	}
	if err != nil {
		// The connection's transaction state is unknown: drop it.
		_ = conn.Conn().Close(context.WithoutCancel(ctx))
		conn.Release()
		return nil, fmt.Errorf("fetch: %w", err)
	}
	b.left.Store(int64(len(b.jobs)))
	for i := range b.jobs {
		b.jobs[i].batch = b
	}
	return b, nil
}

// finish deletes a batch's jobs and commits its transaction, one round
// trip, and checks that every row it held was deleted.
func finish(ctx context.Context, b *batch, st statements) error {
	ids := make([]int64, len(b.jobs))
	for i := range b.jobs {
		ids[i] = b.jobs[i].id
	}
	err := func() error {
		var q pgx.Batch
		q.Queue(st.delete, ids)
		q.Queue("commit")
		br := b.conn.SendBatch(ctx, &q)
		tag, err := br.Exec()
		if err != nil {
			br.Close()
			return err
		}
		if _, err := br.Exec(); err != nil {
			br.Close()
			return err
		}
		if err := br.Close(); err != nil {
			return err
		}
		if tag.RowsAffected() != int64(len(ids)) {
			return fmt.Errorf("deleted %d of the batch's %d jobs", tag.RowsAffected(), len(ids))
		}
		return nil
	}()
	if err != nil {
		_ = b.conn.Conn().Close(context.WithoutCancel(ctx))
		b.conn.Release()
		return fmt.Errorf("delete and commit: %w", err)
	}
	b.conn.Release()
	return nil
}
