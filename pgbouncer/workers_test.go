package pgbouncer_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gworker/gworker/core"
	"github.com/gworker/gworker/driver/bundriver"
	"github.com/gworker/gworker/driver/pgxdriver"
	"github.com/gworker/gworker/driver/pqdriver"
	"github.com/gworker/gworker/internal/pglisten"
	"github.com/gworker/gworker/internal/pgtest"
	"github.com/gworker/gworker/internal/testkit"
)

// Workers poll once an hour: within a test, an idle worker fetches only
// when its listen session hands it something (see timeline). wakeBound is
// how long a job added while they are idle may take to run: wide (a
// pick-up takes milliseconds), and still a tiny fraction of the poll.
const (
	pollInterval = time.Hour
	wakeBound    = 5 * time.Second
)

// driver opens one of gworker's drivers on url, listening on listenURL
// (the driver's ListenDSN option) unless it is "".
type driver struct {
	name string
	open func(ctx context.Context, url, listenURL string) (core.Database, func() error, error)
	// listenOption is the option the driver's error names as the fix.
	listenOption string
}

var drivers = []driver{
	{name: "pgx", listenOption: "pgxdriver.ListenDSN(url)",
		open: opener(pgxdriver.Open, pgxdriver.ListenDSN)},
	// pgxdriver.New over a pool the application made with pgx's defaults
	// (named prepared statements): the Driver checks for a pooler at its
	// first statement.
	{name: "pgx-new", listenOption: "pgxdriver.ListenDSN(url)",
		open: func(ctx context.Context, url, listenURL string) (core.Database, func() error, error) {
			pool, err := pgxpool.New(ctx, url)
			if err != nil {
				return nil, nil, err
			}
			return pgxdriver.New(pool, listenOpts(listenURL, pgxdriver.ListenDSN)...), func() error { pool.Close(); return nil }, nil
		}},
	{name: "pq", listenOption: "pqdriver.ListenDSN(url)",
		open: opener(pqdriver.Open, pqdriver.ListenDSN)},
	{name: "bun", listenOption: "bundriver.ListenDSN(url)",
		open: opener(bundriver.Open, bundriver.ListenDSN)},
}

// opener is the open func of a driver package, given its Open and its
// ListenDSN option.
func opener[O any, D interface {
	core.Database
	Close() error
}](open func(context.Context, string, ...O) (D, error), listenDSN func(string) O) func(context.Context, string, string) (core.Database, func() error, error) {
	return func(ctx context.Context, url, listenURL string) (core.Database, func() error, error) {
		d, err := open(ctx, url, listenOpts(listenURL, listenDSN)...)
		if err != nil {
			return nil, nil, err
		}
		return d, d.Close, nil
	}
}

// listenOpts is the driver's options: ListenDSN(listenURL) unless
// listenURL is "".
func listenOpts[O any](listenURL string, listenDSN func(string) O) []O {
	if listenURL == "" {
		return nil
	}
	return []O{listenDSN(listenURL)}
}

// runs records each handler run by payload number and by job id, and
// records "ran" and "ran:N" in ev.
type runs struct {
	mu   sync.Mutex
	byN  map[int]int
	byID map[int64]int
	ev   *testkit.Events
}

func (r *runs) ran(id int64, n int) {
	r.mu.Lock()
	r.byN[n]++
	r.byID[id]++
	r.mu.Unlock()
	r.ev.Record(fmt.Sprintf("ran:%d", n))
	r.ev.Record("ran")
}

// Payload numbers: the job that checks the wake-up, and the named-queue
// check's jobs: first and second of the queue, and an unrelated one.
const (
	wakeN      = 100
	heldFirst  = 200
	heldSecond = 201
	unrelated  = 202
)

// heldQueue is the task of the named-queue check: the queue's first job
// blocks until released.
type heldQueue struct {
	tl      *timeline
	rec     *runs
	started chan *core.Job // the first job, as its handler starts
	release chan struct{}
	once    sync.Once
}

func (h *heldQueue) run(ctx context.Context, job *core.Job) error {
	var p struct{ N int }
	if err := json.Unmarshal(job.Payload, &p); err != nil {
		return err
	}
	h.tl.record(-1, fmt.Sprintf("start:%d", p.N), []int64{job.ID})
	if p.N == heldFirst {
		select {
		case h.started <- job:
		default: // it runs again: the test fails on its count
		}
		select {
		case <-h.release:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	h.tl.record(-1, fmt.Sprintf("end:%d", p.N), []int64{job.ID})
	h.rec.ran(job.ID, p.N)
	return nil
}

func (h *heldQueue) letGo() { h.once.Do(func() { close(h.release) }) }

func TestWorkersThroughPgBouncer(t *testing.T) {
	b := pgbouncerFor(t)
	for _, d := range drivers {
		t.Run(d.name, func(t *testing.T) {
			t.Parallel()
			workersThrough(t, b, d)
		})
	}
}

func workersThrough(t *testing.T, b *bouncer, d driver) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	schema := pgtest.Schema(t)
	db, closeDB, err := d.open(ctx, b.pooledFor(d.name), b.direct)
	if err != nil {
		t.Fatalf("open %s through pgbouncer: %v", d.name, err)
	}
	defer closeDB()

	if err := core.Migrate(ctx, db, core.MigrateOptions{Schema: schema}); err != nil {
		t.Fatalf("migrate through pgbouncer: %v", err)
	}
	// Migrating again finds the schema up to date, through pgbouncer too.
	if err := core.Migrate(ctx, db, core.MigrateOptions{Schema: schema}); err != nil {
		t.Fatalf("migrate again through pgbouncer: %v", err)
	}
	u, err := core.NewUtils(db, core.UtilsOptions{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	direct, err := pgx.Connect(ctx, b.direct)
	if err != nil {
		t.Fatal(err)
	}
	defer direct.Close(context.WithoutCancel(ctx))
	jobs := pgx.Identifier{schema, "jobs"}.Sanitize()

	events := &testkit.Events{}
	rec := &runs{byN: map[int]int{}, byID: map[int64]int{}, ev: events}
	const workers = 2
	tl := newTimeline(workers, true)
	work := core.RawTask("work", func(ctx context.Context, job *core.Job) error {
		var p struct{ N int }
		if err := json.Unmarshal(job.Payload, &p); err != nil {
			return err
		}
		rec.ran(job.ID, p.N)
		return nil
	})
	boom := core.RawTask("boom", func(context.Context, *core.Job) error { return errors.New("boom, on purpose") })
	held := &heldQueue{tl: tl, rec: rec, started: make(chan *core.Job, 1), release: make(chan struct{})}
	defer held.letGo()
	hold := core.RawTask("hold", held.run)

	logs := &testkit.Buffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	wctx, stop := context.WithCancel(ctx)
	defer stop()
	var wg sync.WaitGroup
	errs := make([]error, workers)
	for i := range errs {
		// PollInterval an hour, and no refetch delay (the zero
		// LocalQueue.RefetchDelay): an idle worker fetches only when its
		// listen session hands it something.
		w, err := core.NewWorker(core.WorkerOptions{
			Database:     probe{Database: db, tl: tl, i: i},
			Schema:       schema,
			Tasks:        []core.Task{work, boom, hold},
			Concurrency:  3,
			PollInterval: pollInterval,
			Logger:       log.With("worker", i),
			Hooks: core.Hooks{OnEvent: func(ctx context.Context, e core.Event) {
				events.OnEvent(ctx, e)
				switch f := e.(type) {
				case core.FetchStarted:
					tl.fetchStarted(i)
				case core.JobsFetched:
					tl.fetched(i, f.Jobs)
				}
			}},
		})
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			// Logged as well, for a failure while the others still run.
			if errs[i] = w.Run(wctx); errs[i] != nil {
				log.Error("the worker's Run returned", "worker", i, "error", errs[i])
			}
		})
	}
	defer func() {
		if t.Failed() {
			t.Logf("workers' logs:\n%s\ntimeline: %s", logs.String(), tl)
		}
	}()

	// The wake-up. The workers have no job yet, so they have recorded no
	// outcome: once both listen and are idle (see timeline), only a
	// message of their listen sessions, on the direct connection, can
	// make one fetch again before the poll, an hour away.
	markCtx, cancelMark := context.WithTimeout(ctx, testkit.DefaultWait)
	mark, err := tl.markIdle(markCtx)
	cancelMark()
	if err != nil {
		t.Fatalf("the workers never were idle and listening, which the wake-up check needs: %v; the server's sessions:\n%s\nworkers' goroutines:\n%s",
			err, sessions(ctx, direct), testkit.Goroutines("gworker/core.(*Worker).run("))
	}
	began := time.Now()
	wake, err := u.AddRawJob(ctx, "work", map[string]int{"n": wakeN}, nil)
	if err != nil {
		t.Fatal(err)
	}
	wakeCtx, cancelWake := context.WithTimeout(ctx, wakeBound)
	defer cancelWake()
	if err := events.Await(wakeCtx, fmt.Sprintf("ran:%d", wakeN), 1); err != nil {
		t.Fatalf("a job added while the workers were idle did not run within %v (they poll every %v): no notification woke them", wakeBound, pollInterval)
	}
	elapsed := time.Since(began).Round(time.Millisecond)
	checkWoken(t, tl.snapshot(), mark, wake.ID)
	t.Logf("%s: add through pgbouncer -> handler done, woken by NOTIFY on the direct connection: %v", d.name, elapsed)
	tl.ungate()

	// The workload, while the workers run: jobs 0-11 one by one with the
	// Go client, 12-19 in a named queue with one AddJobs, 20-23 with SQL
	// add_job; three jobs that fail for good.
	want := 0
	for ; want < 12; want++ {
		if _, err := u.AddRawJob(ctx, "work", map[string]int{"n": want}, nil); err != nil {
			t.Fatalf("add job %d through pgbouncer: %v", want, err)
		}
	}
	var batch []core.NewJob
	for ; want < 20; want++ {
		batch = append(batch, core.NewJob{Identifier: "work", Payload: map[string]int{"n": want}, Spec: core.JobSpec{QueueName: "serial"}})
	}
	if _, err := u.AddJobs(ctx, batch); err != nil {
		t.Fatalf("add jobs through pgbouncer: %v", err)
	}
	addJob := "select " + pgx.Identifier{schema}.Sanitize() + ".add_job('work', json_build_object('n', $1::int))"
	for ; want < 24; want++ {
		if _, err := db.Exec(ctx, addJob, want); err != nil {
			t.Fatalf("SQL add_job through pgbouncer: %v", err)
		}
	}
	for i := range 3 {
		if _, err := u.AddRawJob(ctx, "boom", map[string]int{"n": 1000 + i}, &core.JobSpec{MaxAttempts: 1}); err != nil {
			t.Fatal(err)
		}
	}
	events.Wait(t, "ran", want+1)
	events.Wait(t, (core.JobPermanentlyFailed{}).EventName(), 3)
	var left, failed int
	testkit.Eventually(t, "the finished jobs' outcomes recorded", func() bool {
		err := direct.QueryRow(ctx, "select count(*) filter (where task_identifier = 'work' or locked_at is not null), "+
			"count(*) filter (where task_identifier = 'boom' and attempts = 1 and last_error like 'boom%' and locked_at is null) from "+jobs).
			Scan(&left, &failed)
		return err == nil && left == 0 && failed == 3
	})

	serialQueue(t, ctx, u, direct, schema, tl, events, held)

	stop()
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("worker %d: Run returned %v", i, err)
		}
	}

	rec.mu.Lock()
	defer rec.mu.Unlock()
	for n := range want {
		if rec.byN[n] != 1 {
			t.Errorf("job %d ran %d times; want once", n, rec.byN[n])
		}
	}
	for _, n := range []int{wakeN, heldFirst, heldSecond, unrelated} {
		if rec.byN[n] != 1 {
			t.Errorf("job %d ran %d times; want once", n, rec.byN[n])
		}
	}
	for id, c := range rec.byID {
		if c != 1 {
			t.Errorf("job id %d ran %d times", id, c)
		}
	}
	var locked int
	if err := direct.QueryRow(ctx, "select count(*) from "+jobs+" where locked_at is not null").Scan(&locked); err != nil || locked != 0 {
		t.Errorf("%d jobs still locked after the workers stopped (%v)", locked, err)
	}
	if strings.Contains(logs.String(), "poll-only") {
		t.Errorf("a worker went poll-only although it listens on a direct connection")
	}
}

// checkWoken checks, from the timeline, that job id was locked by a fetch
// that answered a jobs:insert notification: the fetch started after its
// worker's listen session handed it one, after mark (every worker seen
// idle), and no worker started a fetch after mark that did not answer
// such a message (or a fetch already running could have taken the job).
func checkWoken(t *testing.T, entries []entry, mark int, id int64) {
	t.Helper()
	got := slices.IndexFunc(entries, func(e entry) bool { return e.kind == kindFetched && slices.Contains(e.jobs, id) })
	if got < 0 {
		t.Fatalf("job %d ran, but no fetch the timeline saw returned it", id)
	}
	if entries[got].seq <= mark {
		t.Fatalf("job %d was fetched (step %d) before it was added (after step %d)", id, entries[got].seq, mark)
	}
	w := entries[got].worker
	handed := map[int]entry{} // each worker's last message after mark
	var answered entry        // what the fetch that locked the job answered
	for _, e := range entries[:got] {
		if e.seq <= mark {
			continue
		}
		switch e.kind {
		case kindListen, kindInsert, kindReconnected:
			handed[e.worker] = e
		case kindFetch:
			m, ok := handed[e.worker]
			if !ok {
				t.Errorf("worker %d started a fetch (step %d) after every worker was seen idle (step %d) "+
					"with no message from its listen session since: it was not idle", e.worker, e.seq, mark)
			}
			if e.worker == w {
				answered = m
			}
		}
	}
	if answered.kind != kindInsert {
		what := "no message of its listen session"
		if answered.kind != "" {
			what = fmt.Sprintf("a %q message", answered.kind)
		}
		t.Errorf("the fetch that locked job %d (worker %d) answered %s, not a jobs:insert notification", id, w, what)
	}
}

// serialQueue: jobs of a named queue never run at the same time. The
// queue's first job blocks; meanwhile every worker fetches while the
// second job is there to be taken, and none takes it; the queue is locked
// by the first job's worker; released, the first job ends before the
// second starts.
func serialQueue(t *testing.T, ctx context.Context, u *core.Utils, direct *pgx.Conn, schema string, tl *timeline,
	events *testkit.Events, held *heldQueue) {
	const queue = "held"
	queues := pgx.Identifier{schema, "_private_job_queues"}.Sanitize()
	jobRows := pgx.Identifier{schema, "_private_jobs"}.Sanitize()
	first, err := u.AddRawJob(ctx, "hold", map[string]int{"n": heldFirst}, &core.JobSpec{QueueName: queue})
	if err != nil {
		t.Fatal(err)
	}
	var running *core.Job
	select {
	case running = <-held.started:
	case <-ctx.Done():
		t.Fatalf("the queue's first job never started")
	}
	if running.ID != first.ID || running.LockedBy == "" {
		t.Fatalf("the handler got job %d locked by %q; want job %d, locked", running.ID, running.LockedBy, first.ID)
	}
	// lockedBy returns the locked_by of a row, "" when null, "(no row)"
	// when there is none.
	lockedBy := func(what, sql string, arg any) string {
		t.Helper()
		var by *string
		err := direct.QueryRow(ctx, sql, arg).Scan(&by)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			return "(no row)"
		case err != nil:
			t.Fatalf("%s: %v", what, err)
		case by == nil:
			return ""
		}
		return *by
	}
	queueBy := func() string {
		return lockedBy("the queue's row", "select locked_by from "+queues+" where queue_name = $1", queue)
	}
	jobBy := func(id int64) string {
		return lockedBy("the job's row", "select locked_by from "+jobRows+" where id = $1", id)
	}
	if by := queueBy(); by != running.LockedBy {
		t.Errorf("while job 1 runs, queue %q is locked by %q; want %q, the worker running job 1", queue, by, running.LockedBy)
	}
	if by := jobBy(first.ID); by != running.LockedBy {
		t.Errorf("while job 1 runs, it is locked by %q; want %q", by, running.LockedBy)
	}

	second, err := u.AddRawJob(ctx, "hold", map[string]int{"n": heldSecond}, &core.JobSpec{QueueName: queue})
	if err != nil {
		t.Fatal(err)
	}
	added := tl.record(-1, "job 2 added", []int64{second.ID})
	// An unrelated job: its notification makes every worker fetch again,
	// while job 2 is there to be taken.
	if _, err := u.AddRawJob(ctx, "work", map[string]int{"n": unrelated}, nil); err != nil {
		t.Fatal(err)
	}
	waitCtx, cancelWait := context.WithTimeout(ctx, testkit.DefaultWait)
	defer cancelWait()
	if err := tl.await(waitCtx, func(es []entry) bool { return fetchedEach(es, added, len(tl.workers)) }); err != nil {
		t.Fatalf("not every worker fetched after job 2 was added: %v", err)
	}
	if err := events.Await(waitCtx, fmt.Sprintf("ran:%d", unrelated), 1); err != nil {
		t.Fatalf("the unrelated job did not run while job 1 held its queue: %v", err)
	}
	entries := tl.snapshot()
	for _, e := range entries {
		if e.kind == kindFetched && slices.Contains(e.jobs, second.ID) {
			t.Errorf("worker %d fetched job 2 (step %d) while job 1 of its queue was running", e.worker, e.seq)
		}
		if e.kind == fmt.Sprintf("start:%d", heldSecond) {
			t.Errorf("job 2 started (step %d) while job 1 of its queue was running", e.seq)
		}
	}
	if by := queueBy(); by != running.LockedBy {
		t.Errorf("while job 1 runs, after every worker fetched, queue %q is locked by %q; want %q", queue, by, running.LockedBy)
	}
	if by := jobBy(second.ID); by != "" {
		t.Errorf("while job 1 runs, job 2 is locked by %q; want it waiting, unlocked", by)
	}

	held.letGo()
	events.Wait(t, fmt.Sprintf("ran:%d", heldSecond), 1)
	step := map[string]int{}
	for _, e := range tl.snapshot() {
		if strings.HasPrefix(e.kind, "start:") || strings.HasPrefix(e.kind, "end:") {
			step[e.kind] = e.seq
		}
	}
	end1, start2 := step[fmt.Sprintf("end:%d", heldFirst)], step[fmt.Sprintf("start:%d", heldSecond)]
	if end1 == 0 || start2 == 0 || start2 < end1 {
		t.Errorf("job 1 ended at step %d, job 2 started at step %d: they overlapped, or ran out of order", end1, start2)
	}
}

// fetchedEach reports whether each of n workers started a fetch after
// step after, and that fetch returned.
func fetchedEach(entries []entry, after, n int) bool {
	started, returned := map[int]bool{}, map[int]bool{}
	for _, e := range entries {
		if e.seq <= after {
			continue
		}
		switch {
		case e.kind == kindFetch:
			started[e.worker] = true
		case e.kind == kindFetched && started[e.worker]:
			returned[e.worker] = true
		}
	}
	return len(returned) == n
}

// TestWorkerWithoutListenConnection: a worker whose driver would LISTEN
// through pgbouncer (no direct connection given) says, at start, that
// notifications cannot arrive and which option fixes it; with
// RequireNotifications that is Run's error.
func TestWorkerWithoutListenConnection(t *testing.T) {
	b := pgbouncerFor(t)
	for _, d := range drivers {
		t.Run(d.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			schema := pgtest.Schema(t)
			db, closeDB, err := d.open(ctx, b.pooledFor(d.name), "")
			if err != nil {
				t.Fatalf("open %s through pgbouncer: %v", d.name, err)
			}
			defer closeDB()
			if err := core.Migrate(ctx, db, core.MigrateOptions{Schema: schema}); err != nil {
				t.Fatal(err)
			}
			task := core.RawTask("work", func(context.Context, *core.Job) error { return nil })

			// With RequireNotifications, Run fails with that error; it
			// runs beside the other worker, as finding out may take the
			// driver a few seconds.
			required := make(chan error, 1)
			go func() {
				w, err := core.NewWorker(core.WorkerOptions{Database: db, Schema: schema, Tasks: []core.Task{task},
					PollInterval: pollInterval, RequireNotifications: true, Logger: slog.New(slog.DiscardHandler)})
				if err == nil {
					err = w.Run(ctx)
				}
				required <- err
			}()

			// Without it: a warning naming the fix, and the worker polls.
			logs := &testkit.Buffer{}
			w, err := core.NewWorker(core.WorkerOptions{Database: db, Schema: schema, Tasks: []core.Task{task},
				PollInterval: pollInterval, Logger: slog.New(slog.NewTextHandler(logs, nil))})
			if err != nil {
				t.Fatal(err)
			}
			wctx, stop := context.WithCancel(ctx)
			done := make(chan error, 1)
			go func() { done <- w.Run(wctx) }()
			defer func() {
				if t.Failed() {
					t.Logf("worker log:\n%s", logs.String())
				}
			}()
			testkit.Eventually(t, "the warning that LISTEN cannot work through pgbouncer", func() bool {
				select {
				case err := <-done:
					t.Fatalf("the worker's Run returned before it warned: %v", err)
				default:
				}
				// One warning that says why and names the fix.
				for line := range strings.Lines(logs.String()) {
					if strings.Contains(line, "level=WARN") && strings.Contains(line, "PgBouncer in transaction pooling mode") &&
						strings.Contains(line, d.listenOption) {
						return true
					}
				}
				return false
			})
			stop()
			if err := <-done; err != nil {
				t.Errorf("Run: %v", err)
			}
			t.Logf("%s: %s", d.name, firstLine(logs.String(), d.listenOption))

			err = <-required
			if !errors.Is(err, core.ErrNotificationsUnsupported) || !strings.Contains(err.Error(), d.listenOption) {
				t.Errorf("Run with RequireNotifications through pgbouncer returned %v; want an error wrapping "+
					"core.ErrNotificationsUnsupported that names %s", err, d.listenOption)
			}
		})
	}
}

// firstLine returns the first line of s that contains sub.
func firstLine(s, sub string) string {
	for l := range strings.Lines(s) {
		if strings.Contains(l, sub) {
			return strings.TrimSpace(l)
		}
	}
	return fmt.Sprintf("(no line with %q)", sub)
}

// TestListenThroughSessionPooling: a pooler in session pooling mode keeps
// a client's server connection, and with it a LISTEN. Each driver's check
// must let it through: the listen connection may be a session pooling
// port. (bundriver on pgdriver refuses to LISTEN behind any pooler
// without ListenDSN; pgxdriver and pqdriver listen there by default.)
func TestListenThroughSessionPooling(t *testing.T) {
	b := pgbouncerFor(t)
	for _, d := range drivers {
		t.Run(d.name, func(t *testing.T) {
			t.Parallel()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			db, closeDB, err := d.open(ctx, b.session, b.session)
			if err != nil {
				t.Fatalf("open %s through pgbouncer's session pooling: %v", d.name, err)
			}
			defer closeDB()
			channel := "session_" + d.name
			n, err := db.Listen(ctx, channel)
			if err != nil {
				t.Fatalf("Listen through session pooling: %v", err)
			}
			defer n.Close(context.WithoutCancel(ctx))
			if _, err := db.Exec(ctx, "select pg_notify($1, 'hello')", channel); err != nil {
				t.Fatal(err)
			}
			for {
				m, err := n.Receive(ctx)
				if err != nil {
					t.Fatalf("no notification through session pooling: %v", err)
				}
				if m.Channel == channel {
					if m.Payload != "hello" {
						t.Errorf("payload %q, want hello", m.Payload)
					}
					return
				}
			}
		})
	}
}

// TestPoolerDetected: the check the drivers rely on tells PgBouncer, in
// either pooling mode, from PostgreSQL itself.
func TestPoolerDetected(t *testing.T) {
	b := pgbouncerFor(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, tt := range []struct {
		name, url string
		pooled    bool
	}{{"direct", b.direct, false}, {"transaction pooling", b.pooled, true}, {"session pooling", b.session, true}} {
		c, err := pgconn.Connect(ctx, tt.url)
		if err != nil {
			t.Fatal(err)
		}
		pid, pooled, err := pglisten.BackendPID(ctx, c)
		c.Close(ctx)
		if err != nil || pid == 0 || pooled != tt.pooled {
			t.Errorf("%s: BackendPID = %d, pooled %v, %v; want pooled %v", tt.name, pid, pooled, err, tt.pooled)
		}
	}
}

// sessions describes the server's client sessions, for a failure: what
// each runs or waits for, and since when its transaction is open.
func sessions(ctx context.Context, conn *pgx.Conn) string {
	rows, err := conn.Query(ctx, `select format('pid %s %s %s wait %s/%s xact %s: %s', pid, application_name, state,
  wait_event_type, wait_event, now() - xact_start, left(query, 200))
from pg_stat_activity where backend_type = 'client backend' and pid <> pg_backend_pid() order by pid`)
	if err != nil {
		return "(pg_stat_activity: " + err.Error() + ")"
	}
	lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return "(pg_stat_activity: " + err.Error() + ")"
	}
	return strings.Join(lines, "\n")
}
