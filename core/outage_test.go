package core_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/gworker/gworker/core"
	"github.com/gworker/gworker/internal/clocktest"
	"github.com/gworker/gworker/internal/testkit"
)

// errUnreachable stands for a connection the server cannot be reached on:
// it carries no SQLSTATE, as a driver's network errors do not.
var errUnreachable = errors.New("injected: dial tcp 127.0.0.1:5432: connect: connection refused")

// switchDB is a database that can be taken away and given back: while down,
// every statement fails as if the server could not be reached. It counts
// the statements it refused, by their first words.
type switchDB struct {
	core.Database
	down atomic.Bool

	mu      sync.Mutex
	refused map[string]int
}

func newSwitchDB(db core.Database) *switchDB {
	return &switchDB{Database: db, refused: map[string]int{}}
}

func (s *switchDB) refuse(sql string) error {
	if !s.down.Load() {
		return nil
	}
	key := strings.Join(strings.Fields(sql)[:min(3, len(strings.Fields(sql)))], " ")
	s.mu.Lock()
	s.refused[key]++
	s.mu.Unlock()
	return errUnreachable
}

func (s *switchDB) refusals(prefix string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for k, v := range s.refused {
		if strings.HasPrefix(k, prefix) {
			n += v
		}
	}
	return n
}

func (s *switchDB) Exec(ctx context.Context, sql string, args ...any) (int64, error) {
	if err := s.refuse(sql); err != nil {
		return 0, err
	}
	return s.Database.Exec(ctx, sql, args...)
}

func (s *switchDB) Query(ctx context.Context, sql string, args ...any) (core.Rows, error) {
	if err := s.refuse(sql); err != nil {
		return nil, err
	}
	return s.Database.Query(ctx, sql, args...)
}

func (s *switchDB) Begin(ctx context.Context) (core.Transaction, error) {
	if err := s.refuse("begin"); err != nil {
		return nil, err
	}
	return s.Database.Begin(ctx)
}

func (s *switchDB) Listen(ctx context.Context, channels ...string) (core.Notifications, error) {
	if err := s.refuse("listen"); err != nil {
		return nil, err
	}
	return s.Database.Listen(ctx, channels...)
}

// A completion that cannot be recorded is kept and retried for as long as
// the database is away, however long, instead of being dropped after a few
// tries; the job's named queue is not wedged, and the next job of the
// queue runs once the database is back. Retrying is logged once, not per
// attempt.
func TestOutcomeWaitsForTheDatabaseThroughAnOutage(t *testing.T) {
	t.Parallel()
	b := setup(t)
	db := newSwitchDB(b.db)
	var ran sync.Map // job id -> runs
	var runs atomic.Int32
	clock := clocktest.New(time.Now())
	w, sink := b.worker(t, core.WorkerOptions{Database: db, Concurrency: 1, PollInterval: 50 * time.Millisecond, Clock: clock,
		Tasks: []core.Task{core.RawTask("q", func(_ context.Context, j *core.Job) error {
			n, _ := ran.LoadOrStore(j.ID, new(atomic.Int32))
			n.(*atomic.Int32).Add(1)
			if runs.Add(1) == 1 {
				db.down.Store(true) // the server goes away as the first job finishes
			}
			return nil
		})}})
	first := b.add(t, "q", nil, &core.JobSpec{QueueName: "serial"})
	second := b.add(t, "q", nil, &core.JobSpec{QueueName: "serial"})
	stop := runInBackground(t, w)

	// The worker used to give up after 5 tries; twice that proves it does
	// not. A try that fails waits on its backoff; the clock moves on to
	// each next try. The count is read, and the database given back, only
	// while the completer waits on its backoff, so that no try is under
	// way: one that had started would see the database back, and record
	// the job without another backoff.
	for {
		at := pendingTimer(t, clock, "core.(*completer)")
		if db.refusals("with done as") >= 10 {
			if got := b.job(t, first.ID); got.LockedBy == nil || *got.LockedBy != w.ID() {
				t.Fatalf("job %d: locked by %v during the outage, want this worker %s", first.ID, deref(got.LockedBy), w.ID())
			}
			if n := runs.Load(); n != 1 {
				t.Fatalf("%d runs during the outage, want 1: the second job of a serial queue must wait", n)
			}
			db.down.Store(false)
			clock.AdvanceTo(at)
			break
		}
		clock.AdvanceTo(at)
	}
	// Polls and backoffs go on while the jobs are recorded.
	eventually(t, "both jobs to be recorded", func() bool {
		clock.Advance(50 * time.Millisecond)
		return len(b.jobs(t)) == 0
	})
	for _, id := range []int64{first.ID, second.ID} {
		v, ok := ran.Load(id)
		if !ok || v.(*atomic.Int32).Load() != 1 {
			t.Fatalf("job %d ran %v times, want once", id, v)
		}
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if n := countRecs(sink, "WARN gworker: recording job outcomes failed"); n != 1 {
		t.Fatalf("the outage was logged %d times by the completer, want once:\n%s", n, strings.Join(sinkRecs(sink), "\n"))
	}
	if !sink.has("recording job outcomes works again") {
		t.Fatalf("the end of the outage was not logged:\n%s", strings.Join(sinkRecs(sink), "\n"))
	}
}

func countRecs(s *logSink, substr string) int {
	n := 0
	for _, r := range sinkRecs(s) {
		if strings.Contains(r, substr) {
			n++
		}
	}
	return n
}

// Shutdown gives outcomes that cannot be recorded the grace period, then
// names in one line the jobs it leaves locked; the registration stays, so
// that a sweep frees them later.
func TestShutdownNamesTheJobsItCouldNotRecord(t *testing.T) {
	t.Parallel()
	b := setup(t)
	db := newSwitchDB(b.db)
	clock := clocktest.New(time.Now())
	w, sink := b.worker(t, core.WorkerOptions{Database: db, Concurrency: 1, GracePeriod: 300 * time.Millisecond, Clock: clock,
		Tasks: []core.Task{core.RawTask("q", func(context.Context, *core.Job) error {
			db.down.Store(true)
			return nil
		})}})
	job := b.add(t, "q", nil, nil)
	stop := runInBackground(t, w)
	eventually(t, "a refused completion", func() bool { return db.refusals("with done as") >= 1 })
	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	// Shutdown retries for the grace period, on the worker's clock.
	var err error
	eventually(t, "shutdown to give up", func() bool {
		select {
		case err = <-stopped:
			return true
		default:
			clock.Advance(50 * time.Millisecond)
			return false
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	if n := countRecs(sink, "shutdown could not record the outcome of 1 jobs"); n != 1 {
		t.Fatalf("%d lines name the jobs left locked, want 1:\n%s", n, strings.Join(sinkRecs(sink), "\n"))
	}
	if !sink.has("job_ids=[" + strconv.FormatInt(job.ID, 10) + "]") {
		t.Fatalf("the line does not name job %d:\n%s", job.ID, strings.Join(sinkRecs(sink), "\n"))
	}
	if got := b.job(t, job.ID); got.LockedBy == nil || *got.LockedBy != w.ID() {
		t.Fatalf("job %d locked by %v, want %s", job.ID, deref(got.LockedBy), w.ID())
	}
	if n := b.queryInt(t, "select count(*) from S._private_gworker_workers where worker_id = $1", w.ID()); n != 1 {
		t.Fatalf("%d registrations of the worker that holds a lock, want 1", n)
	}
}

// runHeldJob runs the schema's one job of task "t" with RunOnce and returns
// once its handler runs: the handler returns result when release is
// closed, and RunOnce's error arrives on done.
func runHeldJob(t *testing.T, b *bundle, result error) (release chan struct{}, done chan error) {
	t.Helper()
	started := make(chan struct{})
	release, done = make(chan struct{}), make(chan error, 1)
	w, _ := b.worker(t, core.WorkerOptions{Concurrency: 1,
		Tasks: []core.Task{core.RawTask("t", func(context.Context, *core.Job) error {
			close(started)
			<-release
			return result
		})}})
	go func() { done <- w.RunOnce(b.ctx) }()
	<-started
	return release, done
}

// An outcome recorded after the worker lost its job (a sweep took it for
// dead, another worker locked the job since) must not touch the job.
func TestLateOutcomeLeavesAJobAnotherWorkerLocked(t *testing.T) {
	t.Parallel()
	for _, fail := range []bool{false, true} {
		name := map[bool]string{false: "complete", true: "fail"}[fail]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			var result error
			if fail {
				result = errors.New("late failure")
			}
			job := b.add(t, "t", map[string]int{"n": 1}, &core.JobSpec{QueueName: "q"})
			release, done := runHeldJob(t, b, result)
			// What a sweep and another worker's fetch leave behind.
			b.exec(t, "update S._private_jobs set locked_by = 'pool-other', locked_at = now() where id = $1", job.ID)
			b.exec(t, "update S._private_job_queues set locked_by = 'pool-other', locked_at = now()")
			before := b.job(t, job.ID)
			close(release)
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			after := b.job(t, job.ID)
			if deref(after.LockedBy) != "pool-other" || after.Attempts != before.Attempts || after.LastError != nil ||
				!after.RunAt.Equal(before.RunAt) || after.Payload != before.Payload {
				t.Fatalf("the late %s changed the job another worker holds:\nbefore %+v\nafter  %+v", name, before, after)
			}
			if n := b.queryInt(t, "select count(*) from S._private_job_queues where locked_by = 'pool-other'"); n != 1 {
				t.Fatalf("the late %s unlocked the queue another worker holds", name)
			}
		})
	}
}

// A completion recorded after a sweep handed the job back deletes it if
// nobody took it since and it is still the job that ran (same revision):
// it did succeed. A job replaced since (job key, new revision) stays.
func TestLateCompletionOfAReturnedJob(t *testing.T) {
	t.Parallel()
	for _, replaced := range []bool{false, true} {
		name := map[bool]string{false: "unchanged", true: "replaced"}[replaced]
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			job := b.add(t, "t", map[string]int{"v": 1}, &core.JobSpec{JobKey: "k"})
			release, done := runHeldJob(t, b, nil)
			// A sweep's return: unlocked, to run later.
			b.exec(t, "update S._private_jobs set locked_by = null, locked_at = null, run_at = now() + interval '1 hour' where id = $1", job.ID)
			if replaced {
				b.add(t, "t", map[string]int{"v": 2}, &core.JobSpec{JobKey: "k", RunAt: time.Now().Add(time.Hour)})
			}
			close(release)
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			jobs := b.jobs(t)
			switch {
			case !replaced && len(jobs) != 0:
				t.Fatalf("the completed job is still there: %+v", jobs)
			case replaced && (len(jobs) != 1 || jobs[0].Payload != `{"v":2}` || jobs[0].Revision != 1):
				t.Fatalf("the replaced job was touched by the late completion: %+v", jobs)
			}
		})
	}
}

// lostFetchDB loses the answer of the first fetch that locks a job: the
// statement commits on the server, the worker sees only an error.
type lostFetchDB struct {
	core.Database
	lost   atomic.Bool
	lostCh chan struct{} // closed when it lost an answer, if set
	// failLookups is how many looks for the jobs locked by the worker
	// fail, as if the database were away, after the lost answer.
	failLookups atomic.Int32
	lookups     atomic.Int32 // those looks, failed or not
}

func (l *lostFetchDB) Query(ctx context.Context, sql string, args ...any) (core.Rows, error) {
	if l.lost.Load() && isLockedLookup(sql) {
		l.lookups.Add(1)
		if l.failLookups.Add(-1) >= 0 {
			return nil, errors.New("injected: connection refused (the database is restarting)")
		}
	}
	if l.lost.Load() || !isFetch(sql) {
		return l.Database.Query(ctx, sql, args...)
	}
	// The worker fetches one statement at a time: no other fetch runs.
	rows, err := l.Database.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	var n int
	for rows.Next() {
		n++
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return nil, err
	}
	if n == 0 {
		return emptyRows{}, nil
	}
	l.lost.Store(true)
	if l.lostCh != nil {
		close(l.lostCh)
	}
	return nil, errors.New("injected: unexpected EOF (the connection closed after the statement was sent)")
}

type emptyRows struct{}

func (emptyRows) Next() bool        { return false }
func (emptyRows) Scan(...any) error { return errors.New("no row") }
func (emptyRows) Err() error        { return nil }
func (emptyRows) Close() error      { return nil }

// A fetch whose answer is lost with its connection may have locked jobs:
// the worker finds them, returns them untouched, and runs each once.
func TestJobsOfALostFetchAreReturned(t *testing.T) {
	t.Parallel()
	b := setup(t)
	db := &lostFetchDB{Database: b.db}
	ran := &counter{}
	w, sink := b.worker(t, core.WorkerOptions{Database: db, Concurrency: 2, PollInterval: 50 * time.Millisecond,
		Tasks: []core.Task{core.RawTask("t", func(_ context.Context, j *core.Job) error { ran.record(j.ID); return nil })}})
	a := b.add(t, "t", nil, &core.JobSpec{QueueName: "q"})
	c := b.add(t, "t", nil, nil)
	stop := runInBackground(t, w)
	defer func() {
		if t.Failed() {
			t.Log(strings.Join(sinkRecs(sink), "\n"))
		}
	}()
	eventually(t, "both jobs to run and be recorded", func() bool { return len(b.jobs(t)) == 0 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if !db.lost.Load() {
		t.Fatal("no fetch answer was lost, so the test proves nothing")
	}
	ran.mu.Lock()
	defer ran.mu.Unlock()
	counts := map[int64]int{}
	for _, id := range ran.ids {
		counts[id]++
	}
	if counts[a.ID] != 1 || counts[c.ID] != 1 || len(counts) != 2 {
		t.Fatalf("runs per job %v, want each of %d and %d once", counts, a.ID, c.ID)
	}
	if !sink.has("never received") {
		t.Fatalf("the returned jobs were not logged:\n%s", strings.Join(sinkRecs(sink), "\n"))
	}
}

// failingFetchDB refuses the first fetches, as if the server could not be
// reached, while left is above zero.
type failingFetchDB struct {
	core.Database
	left atomic.Int32
}

func (f *failingFetchDB) Query(ctx context.Context, sql string, args ...any) (core.Rows, error) {
	if isFetch(sql) && f.left.Add(-1) >= 0 {
		return nil, errUnreachable
	}
	return f.Database.Query(ctx, sql, args...)
}

// Every fetch is reported as it starts, and a failed one with its error,
// how many failed in a row and the backoff before the next; the fetch
// that works then reports the job it locked.
func TestFetchEventsReportStartsFailuresAndBackoff(t *testing.T) {
	t.Parallel()
	b := setup(t)
	db := &failingFetchDB{Database: b.db}
	const failures = 2
	db.left.Store(failures)
	rec := &hookRecorder{}
	w, _ := b.worker(t, core.WorkerOptions{Database: db, Concurrency: 2, PollInterval: 20 * time.Millisecond,
		Hooks: core.Hooks{OnEvent: rec.record},
		Tasks: []core.Task{core.RawTask("t", func(context.Context, *core.Job) error { return nil })}})
	job := b.add(t, "t", nil, nil)
	stop := runInBackground(t, w)
	eventually(t, "the job to run and be recorded", func() bool { return len(b.jobs(t)) == 0 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}

	// Each start is followed by its failure or its jobs, before the next.
	var seq []string
	open := 0
	for _, e := range rec.all() {
		switch e := e.(type) {
		case core.FetchStarted:
			if open != 0 || e.WorkerID != w.ID() || e.Asked < 1 || e.Asked > 2 {
				t.Fatalf("worker:getJob:start %+v while a fetch asking for %d is open; events %v", e, open, rec.names())
			}
			open = e.Asked
			seq = append(seq, "start")
		case core.FetchFailed:
			// The backoff grows from 100ms, capped at the poll interval,
			// and is drawn from the upper half of its range.
			if e.Asked != open || e.WorkerID != w.ID() || !errors.Is(e.Err, errUnreachable) || e.RetryIn < 10*time.Millisecond || e.RetryIn > 20*time.Millisecond {
				t.Errorf("worker:getJob:error %+v after a start asking for %d, want the injected error and a backoff of 10-20ms", e, open)
			}
			open = 0
			seq = append(seq, fmt.Sprintf("failed %d", e.Failures))
		case core.JobsFetched:
			if e.Asked != open {
				t.Errorf("worker:fetch %+v after a start asking for %d", e, open)
			}
			open = 0
			seq = append(seq, fmt.Sprintf("fetched %d", len(e.Jobs)))
			if len(e.Jobs) == 1 && e.Jobs[0].ID == job.ID {
				seq = append(seq, "the job")
			}
		}
	}
	want := []string{"start", "failed 1", "start", "failed 2", "start", "fetched 1", "the job"}
	if len(seq) < len(want) || !slices.Equal(seq[:len(want)], want) {
		t.Fatalf("fetch events %v, want them to begin %v", seq, want)
	}
}

// lostFetchAtShutdown is what the shutdown tests of a lost fetch share: a
// worker whose fetch of two jobs (one in a named queue) loses its answer,
// with recovery off and a clock that never moves unless the test moves it,
// so that the worker polls no more and only shutdown can look for the jobs.
type lostFetchAtShutdown struct {
	db    *lostFetchDB
	clock *clocktest.Clock
	ran   *counter
	sink  *logSink
	jobs  []int64
	stop  func() error
}

// startLostFetch starts that worker and returns once the answer was lost.
// failLookups is how many of its looks for the jobs fail.
func startLostFetch(t *testing.T, b *bundle, failLookups int32) *lostFetchAtShutdown {
	t.Helper()
	l := &lostFetchAtShutdown{db: &lostFetchDB{Database: b.db, lostCh: make(chan struct{})}, clock: clocktest.New(time.Now()), ran: &counter{}}
	l.db.failLookups.Store(failLookups)
	var w *core.Worker
	w, l.sink = b.worker(t, core.WorkerOptions{Database: l.db, Concurrency: 2, Clock: l.clock,
		Recovery: core.RecoveryOptions{Disabled: true},
		Tasks:    []core.Task{core.RawTask("t", func(_ context.Context, j *core.Job) error { l.ran.record(j.ID); return nil })}})
	l.jobs = []int64{b.add(t, "t", nil, &core.JobSpec{QueueName: "q"}).ID, b.add(t, "t", nil, nil).ID}
	l.stop = runInBackground(t, w)
	select {
	case <-l.db.lostCh:
	case <-time.After(30 * time.Second):
		t.Fatal("no fetch answer was lost within 30s")
	}
	return l
}

// checkReturned checks, after shutdown, that the jobs never ran and are
// back as they were: unlocked, no attempt counted, their queue free.
func (l *lostFetchAtShutdown) checkReturned(t *testing.T, b *bundle) {
	t.Helper()
	if ids := l.ran.list(); len(ids) != 0 {
		t.Fatalf("jobs %v ran; the test needs the lost fetch's jobs unseen", ids)
	}
	for _, id := range l.jobs {
		if j := b.job(t, id); j.LockedBy != nil || j.Attempts != 0 {
			t.Errorf("job %d after shutdown: locked by %v, attempts %d; want unlocked, attempts 0\n%s",
				id, deref(j.LockedBy), j.Attempts, strings.Join(sinkRecs(l.sink), "\n"))
		}
	}
	if n := b.queryInt(t, "select count(*) from S._private_job_queues where locked_by is not null"); n != 0 {
		t.Errorf("%d named queues still locked after shutdown", n)
	}
	if !l.sink.has("never received") {
		t.Fatalf("the returned jobs were not logged:\n%s", strings.Join(sinkRecs(l.sink), "\n"))
	}
}

// A worker shut down right after a fetch lost its answer hands back the
// jobs that fetch locked, as they were, instead of leaving them locked for
// another worker's sweep (off here) or graphile-worker's 4 hours.
func TestShutdownReturnsTheJobsOfALostFetch(t *testing.T) {
	t.Parallel()
	b := setup(t)
	l := startLostFetch(t, b, 0)
	if err := l.stop(); err != nil {
		t.Fatal(err)
	}
	l.checkReturned(t, b)
}

// Shutdown's look for a lost fetch's jobs is tried again when the database
// is away for a moment, on the worker's clock, instead of leaving the jobs
// locked after one failure.
func TestShutdownRetriesTheLookForALostFetchsJobs(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const failures = 2
	l := startLostFetch(t, b, failures)
	stopped := make(chan error, 1)
	go func() { stopped <- l.stop() }()
	for i := range failures {
		// Each failed look waits for a backoff timer before the next.
		at := pendingTimer(t, l.clock, "returnLostFetch")
		if n := l.db.lookups.Load(); n != int32(i+1) {
			t.Fatalf("%d looks before backoff %d, want %d", n, i+1, i+1)
		}
		l.clock.AdvanceTo(at)
	}
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	if n := l.db.lookups.Load(); n != failures+1 {
		t.Fatalf("%d looks for the jobs, want %d failed and one that worked", n, failures+1)
	}
	l.checkReturned(t, b)
}

// When the database comes back after an outage longer than the stale
// threshold, every worker's last heartbeat looks stale: a sweeper must not
// take its live peers for dead and hand out their running jobs.
//
// Heartbeats, sweeps and how long each worker has had the database back
// follow the workers' fake clock; how old a heartbeat is, the database's
// clock says.
func TestNoSweepOfLivePeersAfterAnOutage(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const threshold = time.Second
	clock := clocktest.New(time.Now())
	recovery := core.RecoveryOptions{HeartbeatInterval: 100 * time.Millisecond, SweepInterval: 20 * time.Millisecond,
		SweepPolicy: core.SweepPolicy{StaleThreshold: threshold, Delay: -1}}
	dbA, dbB := newSwitchDB(b.db), newSwitchDB(b.db)
	started, release := make(chan int64, 1), make(chan struct{})
	var runs atomic.Int32
	peer, _ := b.worker(t, core.WorkerOptions{Database: dbB, Concurrency: 1, Recovery: recovery, Clock: clock,
		Tasks: []core.Task{core.RawTask("long", func(_ context.Context, j *core.Job) error {
			runs.Add(1)
			started <- j.ID
			<-release
			return nil
		})}})
	// The sweeper runs the same task, so a job it took from its peer would
	// run a second time.
	sweeper, sweeperLog := b.worker(t, core.WorkerOptions{Database: dbA, Concurrency: 1, Recovery: recovery, Clock: clock,
		Tasks: []core.Task{core.RawTask("long", func(_ context.Context, j *core.Job) error { runs.Add(1); return nil })}})
	job := b.add(t, "long", nil, nil)
	stopPeer := runInBackground(t, peer)
	<-started
	stopSweeper := runInBackground(t, sweeper)
	fresh := func(id, within string) bool {
		return b.queryInt(t, "select count(*) from S._private_gworker_workers where worker_id = $1 and last_heartbeat_at > now() - $2::interval", id, within) == 1
	}
	eventually(t, "the sweeper to register", func() bool { return fresh(sweeper.ID(), "1 minute") })
	tick := func() { clock.Advance(10 * time.Millisecond) }
	// sweep moves the clock on by d, and waits until both workers are done
	// with the sweeps that fell due and wait for their next.
	sweep := func(d time.Duration) {
		t.Helper()
		clock.Advance(d)
		ctx, cancel := context.WithTimeout(b.ctx, testkit.DefaultWait)
		defer cancel()
		err := clock.WaitUntil(ctx, func(ts []clocktest.PendingTimer) bool {
			n := 0
			for _, p := range ts {
				if p.ArmedIn("core.(*Worker).sweepLoop") {
					n++
				}
			}
			return n == 2
		})
		if err != nil {
			t.Fatalf("the workers do not come back to wait for their sweeps: %v", err)
		}
	}
	heartbeats := func(s *switchDB) int {
		return s.refusals("update " + pgx.Identifier{b.schema}.Sanitize() + "._private_gworker_workers")
	}

	dbA.down.Store(true)
	dbB.down.Store(true)
	eventually(t, "both workers' heartbeats to fail", func() bool {
		tick()
		return heartbeats(dbA) > 0 && heartbeats(dbB) > 0
	})
	// The outage lasts until the peer's last heartbeat is older than the
	// threshold, by the database's clock.
	eventually(t, "the peer's heartbeat to go stale", func() bool { return !fresh(peer.ID(), "1200 milliseconds") })
	// Workers do not all get the database back at the same instant: the
	// sweeper does first, and its peer a moment later (well within a
	// threshold), by which time the sweeper has had many chances to sweep.
	dbA.down.Store(false)
	back := clock.Now()
	eventually(t, "the sweeper to heartbeat again", func() bool { tick(); return fresh(sweeper.ID(), "100 milliseconds") })
	for clock.Now().Sub(back) < 2*threshold/5 {
		sweep(20 * time.Millisecond)
	}
	dbB.down.Store(false)
	eventually(t, "the peer to heartbeat again", func() bool { tick(); return fresh(peer.ID(), "100 milliseconds") })
	// Then two thresholds of stable database, in which a sweep would find
	// nothing stale.
	for peerBack := clock.Now(); clock.Now().Sub(peerBack) < 2*threshold; {
		sweep(100 * time.Millisecond)
	}

	if jobs := b.jobs(t); len(jobs) != 1 || jobs[0].ID != job.ID || deref(jobs[0].LockedBy) != peer.ID() {
		t.Fatalf("the live peer's job %d was swept: jobs now %+v, want it locked by %s\n%s", job.ID, jobs, peer.ID(),
			strings.Join(sinkRecs(sweeperLog), "\n"))
	}
	close(release)
	eventually(t, "the job to be recorded", func() bool { return len(b.jobs(t)) == 0 })
	if n := runs.Load(); n != 1 {
		t.Fatalf("the job ran %d times, want once", n)
	}
	if sweeperLog.has("dead workers found") {
		t.Fatalf("the sweeper took a live worker for dead:\n%s", strings.Join(sinkRecs(sweeperLog), "\n"))
	}
	for _, stop := range []func() error{stopSweeper, stopPeer} {
		if err := stop(); err != nil {
			t.Fatal(err)
		}
	}
}

// pollOnlyDB is a driver built poll-only: Listen refuses, naming itself.
type pollOnlyDB struct{ core.Database }

func (pollOnlyDB) Listen(context.Context, ...string) (core.Notifications, error) {
	return nil, fmt.Errorf("fakedriver: the Driver was made with PollOnly: %w", core.ErrNotificationsUnsupported)
}

// A driver that cannot LISTEN is loud: a warning at start that names the
// fix (and the worker still runs jobs by polling), or, with
// RequireNotifications, an error from Run.
func TestPollOnlyDriverIsLoud(t *testing.T) {
	t.Parallel()
	t.Run("warning", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		ran := make(chan struct{})
		w, sink := b.worker(t, core.WorkerOptions{Database: pollOnlyDB{b.db}, PollInterval: 50 * time.Millisecond,
			Tasks: []core.Task{core.RawTask("p", func(context.Context, *core.Job) error { close(ran); return nil })}})
		stop := runInBackground(t, w)
		// The first fetch found nothing: only a poll can find the job.
		sink.events.Wait(t, "worker:fetch", 1)
		b.add(t, "p", nil, nil)
		select {
		case <-ran:
		case <-time.After(30 * time.Second):
			t.Fatal("a poll-only worker did not run a job added after its first fetch within 30s")
		}
		if err := stop(); err != nil {
			t.Fatal(err)
		}
		if n := countRecs(sink, "WARN gworker: poll-only"); n != 1 || !sink.has("fakedriver: the Driver was made with PollOnly") ||
			!sink.has("RequireNotifications") {
			t.Fatalf("want one warning naming the driver and the fix, got %d:\n%s", n, strings.Join(sinkRecs(sink), "\n"))
		}
	})
	t.Run("error", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		w, _ := b.worker(t, core.WorkerOptions{Database: pollOnlyDB{b.db}, RequireNotifications: true,
			Tasks: []core.Task{core.RawTask("p", func(context.Context, *core.Job) error { return nil })}})
		err := w.Run(b.ctx)
		if !errors.Is(err, core.ErrNotificationsUnsupported) || !strings.Contains(err.Error(), "RequireNotifications") {
			t.Fatalf("Run = %v, want an error wrapping ErrNotificationsUnsupported that names RequireNotifications", err)
		}
	})
}

// isFetch tells the worker's fetch statement, which may also record
// completions that ride it.
func isFetch(sql string) bool { return strings.Contains(sql, "candidates as (") }

// isLockedLookup matches the worker's look for the jobs it has locked.
func isLockedLookup(sql string) bool {
	return strings.HasPrefix(sql, "select j.id, j.job_queue_id from ") && strings.HasSuffix(sql, "where j.locked_by = $1")
}
