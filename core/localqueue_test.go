package core_test

import (
	"context"
	"errors"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gworker/gworker/core"
	"github.com/gworker/gworker/internal/clocktest"
	"github.com/gworker/gworker/internal/testkit"
)

// blocker is a task whose first job blocks until released, so that the
// jobs fetched with it wait in the local queue.
type blocker struct {
	started chan int64
	release chan struct{}
	ran     counter
	first   atomic.Bool
}

func newBlocker() *blocker {
	return &blocker{started: make(chan int64, 100), release: make(chan struct{})}
}

func (b *blocker) task() core.Task {
	return core.RawTask("lq", func(ctx context.Context, j *core.Job) error {
		b.started <- j.ID
		if b.first.CompareAndSwap(false, true) {
			select {
			case <-b.release:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		b.ran.record(j.ID)
		return nil
	})
}

func TestLocalQueueReturnsJobsAfterTTL(t *testing.T) {
	t.Parallel()
	b := setup(t)
	bl := newBlocker()
	w, sink := b.worker(t, core.WorkerOptions{Concurrency: 1, PollInterval: time.Hour,
		LocalQueue: core.LocalQueueOptions{Size: 10, TTL: 50 * time.Millisecond},
		Tasks:      []core.Task{bl.task()}})
	runInBackground(t, w)
	// Added once the worker listens, so that its first wake-up cannot come
	// after the TTL and fetch the returned jobs straight back.
	sink.events.Wait(t, testkit.Listened, 1)
	added, err := b.utils.AddJobs(b.ctx, []core.NewJob{{Identifier: "lq", Spec: core.JobSpec{Priority: -1}}, {Identifier: "lq"}, {Identifier: "lq"}})
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(added, func(a, b *core.Job) int { return a.Priority - b.Priority })
	first, others := added[0], added[1:]
	if id := <-bl.started; id != first.ID {
		t.Fatalf("started %d first", id)
	}
	sink.events.Wait(t, string(core.LocalQueueTTLExpired), 1)
	eventually(t, "the waiting jobs to be unlocked", func() bool {
		return b.queryInt(t, "select count(*) from S._private_jobs where locked_by is null") == 2
	})
	for _, j := range others {
		r := b.job(t, j.ID)
		if r.Attempts != 0 || r.LockedBy != nil || !r.RunAt.Equal(j.RunAt) || r.LastError != nil {
			t.Fatalf("job %d after TTL: %+v, want attempts 0, unlocked, run_at and last_error unchanged", j.ID, r)
		}
	}
	close(bl.release)
	eventually(t, "all jobs to run", func() bool { return len(bl.ran.list()) == 3 })
	eventually(t, "the table to empty", func() bool { return len(b.jobs(t)) == 0 })
}

func TestLocalQueueReturnsJobsOnShutdown(t *testing.T) {
	t.Parallel()
	b := setup(t)
	bl := newBlocker()
	w, _ := b.worker(t, core.WorkerOptions{Concurrency: 1, GracePeriod: 10 * time.Millisecond, InterruptedRetryDelay: time.Hour,
		LocalQueue: core.LocalQueueOptions{Size: 10}, Tasks: []core.Task{bl.task()}})
	first := b.add(t, "lq", nil, &core.JobSpec{Priority: -1, QueueName: "q1"})
	waiting := []*core.Job{b.add(t, "lq", nil, &core.JobSpec{QueueName: "q2"}), b.add(t, "lq", nil, nil)}
	stop := runInBackground(t, w)
	<-bl.started
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	for _, j := range waiting {
		r := b.job(t, j.ID)
		if r.Attempts != 0 || r.LockedBy != nil || !r.RunAt.Equal(j.RunAt) || r.LastError != nil {
			t.Fatalf("waiting job %d after shutdown: %+v", j.ID, r)
		}
	}
	if r := b.job(t, first.ID); r.Attempts != 0 || r.LockedBy != nil || !strings.Contains(deref(r.LastError).(string), "interrupted") {
		t.Fatalf("running job after shutdown: %+v", r)
	}
	if n := b.queryInt(t, "select count(*) from S._private_job_queues where locked_by is not null"); n != 0 {
		t.Fatalf("%d queues still locked", n)
	}
}

func TestLocalQueueRefetchDelayIsAbortedByAnnouncedJobs(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ran := make(chan int64, 10)
	w, sink := b.worker(t, core.WorkerOptions{PollInterval: time.Hour, LocalQueue: core.LocalQueueOptions{Size: 4,
		RefetchDelay: core.RefetchDelayOptions{Duration: time.Hour, MaxAbortThreshold: 2}},
		Tasks: []core.Task{core.RawTask("lq", func(_ context.Context, j *core.Job) error { ran <- j.ID; return nil })}})
	runInBackground(t, w)
	// The first fetch finds nothing and starts an hour-long delay.
	sink.events.Wait(t, string(core.RefetchDelayStarted), 1)
	sink.events.Wait(t, testkit.Listened, 1)
	// Three announced jobs exceed any abort threshold up to 2.
	if _, err := b.utils.AddJobs(b.ctx, []core.NewJob{{Identifier: "lq"}, {Identifier: "lq"}, {Identifier: "lq"}}); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		select {
		case <-ran:
		case <-time.After(30 * time.Second):
			t.Fatalf("job %d did not run: the delay was not aborted; log:\n%s", i, strings.Join(sinkRecs(sink), "\n"))
		}
	}
	if !sink.events.Has(string(core.RefetchDelayAborted)) {
		t.Fatalf("jobs ran but the delay was not aborted; events: %v", sink.events.Names())
	}
}

func TestLocalQueueRefetchDelayHoldsBackThenExpires(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ran := make(chan int64, 10)
	w, sink := b.worker(t, core.WorkerOptions{PollInterval: 100 * time.Millisecond, LocalQueue: core.LocalQueueOptions{Size: 4,
		// An abort threshold drawn from 0..2^30 is, in practice, never
		// reached by the handful of wake-ups this test causes.
		RefetchDelay: core.RefetchDelayOptions{Duration: 100 * time.Millisecond, Threshold: 1, MaxAbortThreshold: 1 << 30}},
		Tasks: []core.Task{core.RawTask("lq", func(_ context.Context, j *core.Job) error { ran <- j.ID; return nil })}})
	job := b.add(t, "lq", nil, nil)
	runInBackground(t, w)
	if id := <-ran; id != job.ID {
		t.Fatalf("ran %d", id)
	}
	// That fetch returned 1 <= Threshold: a delay starts, and a job added now
	// runs only after it expired (one announced job cannot abort it).
	sink.events.Wait(t, string(core.RefetchDelayStarted), 1)
	later := b.add(t, "lq", nil, nil)
	select {
	case id := <-ran:
		if id != later.ID {
			t.Fatalf("ran %d", id)
		}
		// The fetch that found it can only have come after a delay ran out.
		if !sink.events.Has(string(core.RefetchDelayExpired)) || sink.events.Has(string(core.RefetchDelayAborted)) {
			t.Fatalf("the job ran without waiting out the delay; events: %v", sink.events.Names())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("job never ran after the delay; log:\n%s", strings.Join(sinkRecs(sink), "\n"))
	}
	if !sink.events.Has(string(core.RefetchDelayExpired)) {
		t.Fatalf("delay did not run its course; events: %v", sink.events.Names())
	}
}

func TestSerialQueuesStaySerialUnderBatchFetch(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var mu sync.Mutex
	running := map[string]int{}
	var overlap atomic.Bool
	var done atomic.Int32
	task := core.RawTask("s", func(_ context.Context, j *core.Job) error {
		mu.Lock()
		running[j.QueueName]++
		if j.QueueName != "" && running[j.QueueName] > 1 {
			overlap.Store(true)
		}
		mu.Unlock()
		time.Sleep(time.Millisecond)
		mu.Lock()
		running[j.QueueName]--
		mu.Unlock()
		done.Add(1)
		return nil
	})
	var jobs []core.NewJob
	for i := 0; i < 60; i++ {
		q := []string{"a", "b", "c", ""}[i%4]
		jobs = append(jobs, core.NewJob{Identifier: "s", Spec: core.JobSpec{QueueName: q}})
	}
	if _, err := b.utils.AddJobs(b.ctx, jobs); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		w, _ := b.worker(t, core.WorkerOptions{Concurrency: 4, PollInterval: 20 * time.Millisecond,
			LocalQueue: core.LocalQueueOptions{Size: 20}, Tasks: []core.Task{task}})
		runInBackground(t, w)
	}
	eventually(t, "all jobs to run", func() bool { return done.Load() == 60 })
	if overlap.Load() {
		t.Fatal("two jobs of one named queue ran at the same time")
	}
}

func TestBatchDelayGathersOutcomesAndShutdownFlushesThem(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var done atomic.Int32
	w, sink := b.worker(t, core.WorkerOptions{Concurrency: 5, CompleteJobBatchDelay: time.Hour, FailJobBatchDelay: time.Hour,
		Tasks: []core.Task{core.RawTask("t", func(_ context.Context, j *core.Job) error {
			done.Add(1)
			if j.Priority == 1 {
				return errors.New("fails")
			}
			return nil
		})}})
	for i := 0; i < 5; i++ {
		b.add(t, "t", nil, &core.JobSpec{Priority: i % 2})
	}
	stop := runInBackground(t, w)
	eventually(t, "the handlers", func() bool { return done.Load() == 5 })
	// An hour's delay: nothing is recorded until shutdown flushes it all.
	if n := b.queryInt(t, "select count(*) from S._private_jobs where locked_by is not null"); n != 5 {
		t.Fatalf("%d jobs locked while their outcomes wait, want 5", n)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	rows := b.jobs(t)
	if len(rows) != 2 {
		t.Fatalf("%d jobs left, want the 2 failures", len(rows))
	}
	for _, r := range rows {
		if r.Attempts != 1 || deref(r.LastError) != "fails" || r.LockedBy != nil {
			t.Fatalf("failed job = %+v", r)
		}
	}
	if !sink.has("complete=3 fail=2") {
		t.Fatalf("outcomes were not recorded as one batch:\n%s", strings.Join(sinkRecs(sink), "\n"))
	}
}

func TestBatchedFailureBacksOffExactlyAsUnbatched(t *testing.T) {
	t.Parallel()
	b := setup(t)
	w, _ := b.worker(t, core.WorkerOptions{FailJobBatchDelay: 20 * time.Millisecond, LocalQueue: core.LocalQueueOptions{Size: 8},
		Tasks: []core.Task{core.RawTask("f", func(context.Context, *core.Job) error { return errors.New("x") })}})
	job := b.add(t, "f", nil, nil)
	b.exec(t, "update S._private_jobs set attempts = 3 where id = $1", job.ID)
	before := b.dbNow(t)
	if err := w.RunOnce(b.ctx); err != nil {
		t.Fatal(err)
	}
	after := b.dbNow(t)
	var runAt time.Time
	if err := b.pool.QueryRow(b.ctx, b.sql("select run_at from S._private_jobs where id = $1"), job.ID).Scan(&runAt); err != nil {
		t.Fatal(err)
	}
	if want := time.Duration(math.Exp(4) * float64(time.Second)); runAt.Before(before.Add(want)) || runAt.After(after.Add(want)) {
		t.Fatalf("batched failure: run_at %s, want the failure's time + %s (between %s and %s)", runAt, want, before.Add(want), after.Add(want))
	}
}

func TestLocalQueueRunOnceDrainsEverything(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var n atomic.Int32
	w, _ := b.worker(t, core.WorkerOptions{Concurrency: 3, LocalQueue: core.LocalQueueOptions{Size: 7},
		Tasks: []core.Task{core.RawTask("d", func(context.Context, *core.Job) error { n.Add(1); return nil })}})
	var jobs []core.NewJob
	for i := 0; i < 100; i++ {
		q := ""
		if i%10 == 0 {
			q = "serial"
		}
		jobs = append(jobs, core.NewJob{Identifier: "d", Spec: core.JobSpec{QueueName: q}})
	}
	if _, err := b.utils.AddJobs(b.ctx, jobs); err != nil {
		t.Fatal(err)
	}
	if err := w.RunOnce(b.ctx); err != nil {
		t.Fatal(err)
	}
	if n.Load() != 100 || len(b.jobs(t)) != 0 {
		t.Fatalf("ran %d, %d left", n.Load(), len(b.jobs(t)))
	}
}

// A long batch delay must not stall the worker: once half of the
// back-pressure limit is waiting, the completer flushes at once.
func TestBatchFlushesOnSizeDespiteALongDelay(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var done atomic.Int32
	clock := clocktest.New(time.Now())
	w, sink := b.worker(t, core.WorkerOptions{Concurrency: 2, CompleteJobBatchDelay: time.Hour, Clock: clock,
		LocalQueue: core.LocalQueueOptions{Disabled: true},
		Tasks:      []core.Task{core.RawTask("s", func(context.Context, *core.Job) error { done.Add(1); return nil })}})
	var jobs []core.NewJob
	for i := 0; i < 40; i++ {
		jobs = append(jobs, core.NewJob{Identifier: "s"})
	}
	if _, err := b.utils.AddJobs(b.ctx, jobs); err != nil {
		t.Fatal(err)
	}
	stop := runInBackground(t, w)
	// Back-pressure stops fetching at 4 x 2 = 8 waiting outcomes; flushes
	// happen at 4, so all 40 jobs run well within the hour's delay. A full
	// fetch that no flush follows leaves the worker waiting for its next
	// poll: the clock moves on a poll interval at a time, each time once
	// the last move led to a fetch.
	var moved time.Duration
	for done.Load() < 40 {
		if moved > 10*time.Minute {
			t.Fatalf("%d of 40 jobs ran in %v of polls", done.Load(), moved)
		}
		fetches := sink.events.Count("worker:fetch")
		clock.Advance(core.DefaultPollInterval)
		moved += core.DefaultPollInterval
		eventually(t, "a fetch after the poll", func() bool {
			return sink.events.Count("worker:fetch") > fetches || done.Load() == 40
		})
	}
	if !sink.has("complete=4 ") {
		t.Fatalf("no size-triggered flush of 4:\n%s", strings.Join(sinkRecs(sink), "\n"))
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if n := len(b.jobs(t)); n != 0 {
		t.Fatalf("%d jobs left after shutdown flushed the rest", n)
	}
}

// flakyDB rejects every batched completion of more than one job as if
// for its data, so only the completer's job-by-job fallback can record
// them.
type flakyDB struct {
	core.Database
	failed atomic.Int32
}

func (f *flakyDB) Exec(ctx context.Context, sql string, args ...any) (int64, error) {
	if strings.HasPrefix(sql, "with done as") {
		if ids, ok := args[0].([]int64); ok && len(ids) > 1 {
			f.failed.Add(1)
			return 0, &sqlStateError{code: "22P02", msg: "injected failure of a batched completion"}
		}
	}
	return f.Database.Exec(ctx, sql, args...)
}

// sqlStateError is a database error with a SQLSTATE, as drivers return.
type sqlStateError struct{ code, msg string }

func (e *sqlStateError) Error() string    { return e.msg + " (SQLSTATE " + e.code + ")" }
func (e *sqlStateError) SQLState() string { return e.code }

func TestFailedBatchFallsBackToOneStatementPerJob(t *testing.T) {
	t.Parallel()
	b := setup(t)
	db := &flakyDB{Database: b.db}
	var done atomic.Int32
	w, sink := b.worker(t, core.WorkerOptions{Database: db, Concurrency: 4, CompleteJobBatchDelay: 200 * time.Millisecond,
		Tasks: []core.Task{core.RawTask("f", func(context.Context, *core.Job) error { done.Add(1); return nil })}})
	if _, err := b.utils.AddJobs(b.ctx, []core.NewJob{{Identifier: "f"}, {Identifier: "f"}, {Identifier: "f"}, {Identifier: "f"}}); err != nil {
		t.Fatal(err)
	}
	if err := w.RunOnce(b.ctx); err != nil {
		t.Fatal(err)
	}
	if db.failed.Load() == 0 || !sink.has("trying one by one") {
		t.Fatalf("no batch failed (%d), so the fallback was not exercised", db.failed.Load())
	}
	if n := len(b.jobs(t)); n != 0 || done.Load() != 4 {
		t.Fatalf("%d jobs left, %d ran", n, done.Load())
	}
}

// With a local queue, completions in a named queue wake the worker to fetch
// that queue's next job: no notification announces it, and here polling
// never comes.
func TestLocalQueueFetchesTheNextJobOfAFreedNamedQueue(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ran := &counter{}
	w, _ := b.worker(t, core.WorkerOptions{Concurrency: 4, PollInterval: time.Hour,
		LocalQueue: core.LocalQueueOptions{Size: 10, RefetchDelay: core.RefetchDelayOptions{Duration: time.Millisecond}},
		Tasks:      []core.Task{core.RawTask("s", func(_ context.Context, j *core.Job) error { ran.record(j.ID); return nil })}})
	var jobs []core.NewJob
	for i := 0; i < 5; i++ {
		jobs = append(jobs, core.NewJob{Identifier: "s", Spec: core.JobSpec{QueueName: "one"}})
	}
	added, err := b.utils.AddJobs(b.ctx, jobs)
	if err != nil {
		t.Fatal(err)
	}
	stop := runInBackground(t, w)
	eventually(t, "the queue's jobs to run one after another", func() bool { return len(b.jobs(t)) == 0 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	var want []int64
	for _, j := range added {
		want = append(want, j.ID)
	}
	if got := ran.list(); !slices.Equal(got, want) {
		t.Fatalf("ran %v, want each once in order %v", got, want)
	}
}

// fetchRecorder keeps the worker's last fetch statement and its arguments.
type fetchRecorder struct {
	core.Database
	mu   sync.Mutex
	sql  string
	args []any
}

func (f *fetchRecorder) Query(ctx context.Context, sql string, args ...any) (core.Rows, error) {
	if isFetch(sql) {
		f.mu.Lock()
		f.sql, f.args = sql, args
		f.mu.Unlock()
	}
	return f.Database.Query(ctx, sql, args...)
}

// A fetch commits with synchronous_commit off unless DurableFetch is set:
// the worker's own statement, replayed in a transaction, says so.
func TestFetchCommitIsAsynchronousUnlessDurable(t *testing.T) {
	t.Parallel()
	for _, durable := range []bool{false, true} {
		b := setup(t)
		rec := &fetchRecorder{Database: b.db}
		w, _ := b.worker(t, core.WorkerOptions{Database: rec, DurableFetch: durable,
			Tasks: []core.Task{core.RawTask("f", func(context.Context, *core.Job) error { return nil })}})
		b.add(t, "f", nil, nil)
		if err := w.RunOnce(b.ctx); err != nil {
			t.Fatal(err)
		}
		if n := len(b.jobs(t)); n != 0 {
			t.Fatalf("durable %v: %d jobs left", durable, n)
		}
		// The same statement in a transaction of our own, with a job to
		// lock, then the setting it leaves for the commit.
		b.add(t, "f", nil, nil)
		tx, err := b.pool.Begin(b.ctx)
		if err != nil {
			t.Fatal(err)
		}
		defer func() { _ = tx.Rollback(b.ctx) }()
		// The test server commits asynchronously anyway; start from on.
		if _, err := tx.Exec(b.ctx, "set local synchronous_commit = on"); err != nil {
			t.Fatal(err)
		}
		rec.mu.Lock()
		sql, args := rec.sql, rec.args
		rec.mu.Unlock()
		rows, err := tx.Query(b.ctx, sql, args...)
		if err != nil {
			t.Fatal(err)
		}
		locked := 0
		for rows.Next() {
			locked++
		}
		if rows.Close(); rows.Err() != nil || locked != 1 {
			t.Fatalf("durable %v: the replayed fetch locked %d jobs: %v", durable, locked, rows.Err())
		}
		var setting string
		if err := tx.QueryRow(b.ctx, "select current_setting('synchronous_commit')").Scan(&setting); err != nil {
			t.Fatal(err)
		}
		if want := map[bool]string{false: "off", true: "on"}[durable]; setting != want {
			t.Fatalf("durable %v: the fetch leaves synchronous_commit %s for its commit, want %s", durable, setting, want)
		}
	}
}

// holdDB runs the first fetch after arm, then holds its rows until release:
// a fetch whose snapshot is older than what happens meanwhile. It counts the
// jobs:insert notifications the worker receives.
type holdDB struct {
	core.Database
	armed    atomic.Bool
	held     chan struct{}
	release  chan struct{}
	received atomic.Int32
}

func (d *holdDB) Query(ctx context.Context, sql string, args ...any) (core.Rows, error) {
	rows, err := d.Database.Query(ctx, sql, args...)
	if err == nil && isFetch(sql) && d.armed.CompareAndSwap(true, false) {
		close(d.held)
		<-d.release
	}
	return rows, err
}

func (d *holdDB) Listen(ctx context.Context, channels ...string) (core.Notifications, error) {
	n, err := d.Database.Listen(ctx, channels...)
	if err != nil {
		return nil, err
	}
	return &countedNotifications{Notifications: n, d: d}, nil
}

type countedNotifications struct {
	core.Notifications
	d *holdDB
}

func (c *countedNotifications) Receive(ctx context.Context) (core.Notification, error) {
	m, err := c.Notifications.Receive(ctx)
	if err == nil && m.Channel == "jobs:insert" {
		c.d.received.Add(1)
	}
	return m, err
}

// A job announced while a fetch that cannot see it runs is fetched when
// that fetch comes back empty, not at the next poll. Not parallel: the
// notifications of other tests' schemas would wake the worker too.
func TestJobAnnouncedDuringAnEmptyFetchIsFetched(t *testing.T) {
	for _, size := range []int{0, 10} {
		b := setup(t)
		db := &holdDB{Database: b.db, held: make(chan struct{}), release: make(chan struct{})}
		ran := &counter{}
		w, sink := b.worker(t, core.WorkerOptions{Database: db, Concurrency: 1, PollInterval: time.Hour,
			LocalQueue: core.LocalQueueOptions{Size: size},
			Tasks:      []core.Task{core.RawTask("t", func(_ context.Context, j *core.Job) error { ran.record(j.ID); return nil })}})
		stop := runInBackground(t, w)
		sink.events.Wait(t, testkit.Listened, 1)
		db.armed.Store(true)
		b.add(t, "not_this_workers", nil, nil) // announced: the worker fetches and finds nothing
		select {
		case <-db.held:
		case <-time.After(30 * time.Second):
			t.Fatal("no fetch was held")
		}
		before := db.received.Load()
		job := b.add(t, "t", nil, nil)
		eventually(t, "the worker to hear of the job", func() bool { return db.received.Load() > before })
		close(db.release)
		eventually(t, "the announced job to run (polling is an hour away)", func() bool { return len(ran.list()) == 1 })
		if got := ran.list(); got[0] != job.ID {
			t.Fatalf("local queue %d: ran %v", size, got)
		}
		if err := stop(); err != nil {
			t.Fatal(err)
		}
	}
}
