package core_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gworker/gworker/core"
	"github.com/gworker/gworker/driver/pgxdriver"
	"github.com/gworker/gworker/internal/clocktest"
	"github.com/gworker/gworker/internal/pgtest"
	"github.com/gworker/gworker/internal/testkit"
)

// logSink collects what a worker made by bundle.worker reports: its log
// records, for the tests about what is logged, and its events (its hooks'
// events and testkit.Listening's signals), for the tests that wait.
type logSink struct {
	mu     sync.Mutex
	recs   []string
	events testkit.Events
}

func (s *logSink) Enabled(context.Context, slog.Level) bool { return true }
func (s *logSink) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Level.String() + " " + r.Message)
	r.Attrs(func(a slog.Attr) bool { b.WriteString(" " + a.String()); return true })
	s.mu.Lock()
	s.recs = append(s.recs, b.String())
	s.mu.Unlock()
	return nil
}
func (s *logSink) WithAttrs(as []slog.Attr) slog.Handler { return &attrSink{s, as} }
func (s *logSink) WithGroup(string) slog.Handler         { return s }

func (s *logSink) has(substr string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.recs {
		if strings.Contains(r, substr) {
			return true
		}
	}
	return false
}

type attrSink struct {
	s  *logSink
	as []slog.Attr
}

func (a *attrSink) Enabled(context.Context, slog.Level) bool { return true }
func (a *attrSink) Handle(ctx context.Context, r slog.Record) error {
	r.AddAttrs(a.as...)
	return a.s.Handle(ctx, r)
}
func (a *attrSink) WithAttrs(as []slog.Attr) slog.Handler {
	return &attrSink{a.s, append(slices.Clone(a.as), as...)}
}
func (a *attrSink) WithGroup(string) slog.Handler { return a }

// eventually polls cond until it holds or the deadline passes.
var eventually = testkit.Eventually

func (b *bundle) worker(t *testing.T, opts core.WorkerOptions) (*core.Worker, *logSink) {
	t.Helper()
	sink := &logSink{}
	if opts.Database == nil {
		opts.Database = b.db
	}
	opts.Database = testkit.Listening(opts.Database, &sink.events)
	if onEvent := opts.Hooks.OnEvent; onEvent != nil {
		opts.Hooks.OnEvent = func(ctx context.Context, e core.Event) {
			sink.events.OnEvent(ctx, e)
			onEvent(ctx, e)
		}
	} else {
		opts.Hooks.OnEvent = sink.events.OnEvent
	}
	opts.Schema = b.schema
	if opts.Logger == nil {
		opts.Logger = slog.New(sink)
	}
	w, err := core.NewWorker(opts)
	if err != nil {
		t.Fatalf("NewWorker: %v", err)
	}
	return w, sink
}

// runInBackground runs w.Run until the returned stop function is called;
// stop returns Run's error.
func runInBackground(t *testing.T, w *core.Worker) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	go func() { errc <- w.Run(ctx) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-errc:
			case <-time.After(60 * time.Second):
				err = errors.New("Run did not return within 60s of cancellation")
			}
		})
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

func (b *bundle) add(t *testing.T, task string, payload any, spec *core.JobSpec) *core.Job {
	t.Helper()
	j, err := b.utils.AddRawJob(b.ctx, task, payload, spec)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

type counter struct {
	mu  sync.Mutex
	ids []int64
}

func (c *counter) record(id int64) {
	c.mu.Lock()
	c.ids = append(c.ids, id)
	c.mu.Unlock()
}

func (c *counter) list() []int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.ids)
}

type greet struct {
	Name string `json:"name"`
}

func (greet) TaskIdentifier() string { return "greet" }

func TestRunOnceCompletesJobsAndPassesPayload(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var got []string
	var mu sync.Mutex
	w, _ := b.worker(t, core.WorkerOptions{Tasks: []core.Task{
		core.NewTask(func(ctx context.Context, job *core.Job, p greet) error {
			mu.Lock()
			got = append(got, p.Name)
			mu.Unlock()
			if job.TaskIdentifier != "greet" || job.Attempts != 1 || job.LockedBy == "" {
				return fmt.Errorf("unexpected job %+v", job)
			}
			return nil
		}),
	}})
	b.add(t, "greet", greet{Name: "ada"}, nil)
	b.add(t, "greet", greet{Name: "bob"}, nil)
	if err := w.RunOnce(b.ctx); err != nil {
		t.Fatal(err)
	}
	slices.Sort(got)
	if !slices.Equal(got, []string{"ada", "bob"}) {
		t.Fatalf("handled %v", got)
	}
	if n := len(b.jobs(t)); n != 0 {
		t.Fatalf("%d jobs left", n)
	}
}

func TestFailedJobBacksOffExponentially(t *testing.T) {
	t.Parallel()
	b := setup(t)
	w, _ := b.worker(t, core.WorkerOptions{Tasks: []core.Task{
		core.RawTask("fails", func(context.Context, *core.Job) error { return errors.New("boom: disk full") }),
	}})
	job := b.add(t, "fails", nil, nil)
	// attempts before the run -> attempts after the fetch -> expected delay
	for _, c := range []struct{ before, after int }{{0, 1}, {2, 3}, {9, 10}, {14, 15}} {
		b.exec(t, "update S._private_jobs set attempts = $2, run_at = now() - interval '1 minute' where id = $1", job.ID, c.before)
		// The failure's now(), on the database's clock, falls between these.
		before := b.dbNow(t)
		if err := w.RunOnce(b.ctx); err != nil {
			t.Fatal(err)
		}
		after := b.dbNow(t)
		var attempts int
		var lastError string
		var runAt time.Time
		if err := b.pool.QueryRow(b.ctx, b.sql(`select attempts, last_error, run_at from S._private_jobs where id = $1`),
			job.ID).Scan(&attempts, &lastError, &runAt); err != nil {
			t.Fatal(err)
		}
		want := time.Duration(math.Exp(math.Min(float64(c.after), 10)) * float64(time.Second))
		if attempts != c.after || lastError != "boom: disk full" || runAt.Before(before.Add(want)) || runAt.After(after.Add(want)) {
			t.Fatalf("after attempt %d: attempts=%d last_error=%q run_at=%s, want %d, boom, the failure's time + %s (between %s and %s)",
				c.after, attempts, lastError, runAt, c.after, want, before.Add(want), after.Add(want))
		}
		if r := b.job(t, job.ID); r.LockedAt != nil || r.LockedBy != nil {
			t.Fatalf("failed job still locked: %+v", r)
		}
	}
}

func TestJobFailsPermanentlyAtMaxAttempts(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var runs atomic.Int32
	w, _ := b.worker(t, core.WorkerOptions{Tasks: []core.Task{
		core.RawTask("fails", func(context.Context, *core.Job) error { runs.Add(1); return errors.New("nope") }),
	}})
	job := b.add(t, "fails", nil, &core.JobSpec{MaxAttempts: 2})
	for i := 0; i < 4; i++ {
		b.exec(t, "update S._private_jobs set run_at = now() - interval '1 second' where id = $1", job.ID)
		if err := w.RunOnce(b.ctx); err != nil {
			t.Fatal(err)
		}
	}
	if n := runs.Load(); n != 2 {
		t.Fatalf("handler ran %d times, want 2", n)
	}
	if r := b.job(t, job.ID); r.Attempts != 2 || deref(r.LastError) != "nope" || r.LockedAt != nil {
		t.Fatalf("row = %+v", r)
	}
}

func TestFutureJobsWaitAndPriorityOrders(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var order []int
	w, _ := b.worker(t, core.WorkerOptions{Concurrency: 1, Tasks: []core.Task{
		core.RawTask("p", func(_ context.Context, j *core.Job) error { order = append(order, j.Priority); return nil }),
	}})
	for _, p := range []int{5, -3, 0, 2} {
		b.add(t, "p", nil, &core.JobSpec{Priority: p})
	}
	future := b.add(t, "p", nil, &core.JobSpec{RunAt: time.Now().Add(time.Hour), Priority: -100})
	if err := w.RunOnce(b.ctx); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(order, []int{-3, 0, 2, 5}) {
		t.Fatalf("ran priorities in order %v", order)
	}
	rows := b.jobs(t)
	if len(rows) != 1 || rows[0].ID != future.ID || rows[0].Attempts != 0 {
		t.Fatalf("left %+v, want only the future job, untouched", rows)
	}
}

func TestJobsOfUnknownTasksAreNeverFetched(t *testing.T) {
	t.Parallel()
	b := setup(t)
	w, _ := b.worker(t, core.WorkerOptions{Tasks: []core.Task{
		core.RawTask("mine", func(context.Context, *core.Job) error { return nil }),
	}})
	other := b.add(t, "theirs", nil, nil)
	b.add(t, "mine", nil, nil)
	if err := w.RunOnce(b.ctx); err != nil {
		t.Fatal(err)
	}
	rows := b.jobs(t)
	if len(rows) != 1 || rows[0].ID != other.ID || rows[0].Attempts != 0 || rows[0].LockedBy != nil {
		t.Fatalf("rows = %+v", rows)
	}
}

func TestForbiddenFlagsSkipJobs(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ran := &counter{}
	task := core.RawTask("f", func(_ context.Context, j *core.Job) error { ran.record(j.ID); return nil })
	plain := b.add(t, "f", nil, nil)
	paused := b.add(t, "f", nil, &core.JobSpec{Flags: []string{"paused"}})
	limited := b.add(t, "f", nil, &core.JobSpec{Flags: []string{"other", "rate-limited"}})
	w, _ := b.worker(t, core.WorkerOptions{Tasks: []core.Task{task}, ForbiddenFlags: []string{"paused"},
		ForbiddenFlagsFunc: func(context.Context) ([]string, error) { return []string{"rate-limited"}, nil }})
	if err := w.RunOnce(b.ctx); err != nil {
		t.Fatal(err)
	}
	if got := ran.list(); !slices.Equal(got, []int64{plain.ID}) {
		t.Fatalf("ran %v, want only %d", got, plain.ID)
	}
	for _, id := range []int64{paused.ID, limited.ID} {
		if r := b.job(t, id); r.Attempts != 0 {
			t.Fatalf("flagged job %d attempted", id)
		}
	}
	// Without the function, the rate-limited job runs.
	w2, _ := b.worker(t, core.WorkerOptions{Tasks: []core.Task{task}, ForbiddenFlags: []string{"paused"}})
	if err := w2.RunOnce(b.ctx); err != nil {
		t.Fatal(err)
	}
	if got := ran.list(); !slices.Equal(got, []int64{plain.ID, limited.ID}) {
		t.Fatalf("ran %v", got)
	}
}

func TestUseLocalTimeComparesRunAtWithTheAppClock(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ran := &counter{}
	task := core.RawTask("t", func(_ context.Context, j *core.Job) error { ran.record(j.ID); return nil })
	job := b.add(t, "t", nil, &core.JobSpec{RunAt: time.Now().Add(time.Hour)})
	w, _ := b.worker(t, core.WorkerOptions{Tasks: []core.Task{task}})
	if err := w.RunOnce(b.ctx); err != nil {
		t.Fatal(err)
	}
	if len(ran.list()) != 0 {
		t.Fatal("future job ran on the database clock")
	}
	local, _ := b.worker(t, core.WorkerOptions{Tasks: []core.Task{task}, UseLocalTime: true,
		Clock: clocktest.New(time.Now().Add(2 * time.Hour))})
	if err := local.RunOnce(b.ctx); err != nil {
		t.Fatal(err)
	}
	if got := ran.list(); !slices.Equal(got, []int64{job.ID}) {
		t.Fatalf("ran %v with a clock 2h ahead", got)
	}
}

func TestPanickingHandlerFailsJobAndWorkerGoesOn(t *testing.T) {
	t.Parallel()
	b := setup(t)
	w, sink := b.worker(t, core.WorkerOptions{Concurrency: 1, Tasks: []core.Task{
		core.RawTask("panics", func(context.Context, *core.Job) error { panic("kaboom") }),
		core.RawTask("fine", func(context.Context, *core.Job) error { return nil }),
	}})
	p := b.add(t, "panics", nil, &core.JobSpec{Priority: -1})
	b.add(t, "fine", nil, nil)
	if err := w.RunOnce(b.ctx); err != nil {
		t.Fatal(err)
	}
	rows := b.jobs(t)
	if len(rows) != 1 || rows[0].ID != p.ID || deref(rows[0].LastError) != "panic: kaboom" || rows[0].Attempts != 1 {
		t.Fatalf("rows = %+v", rows)
	}
	if !sink.has("task panicked") || !sink.has("goroutine ") {
		t.Fatal("no stack trace logged for the panic")
	}
}

func TestPayloadThatDoesNotDecodeFailsTheJob(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var ran atomic.Bool
	w, _ := b.worker(t, core.WorkerOptions{Tasks: []core.Task{
		core.NewTask(func(context.Context, *core.Job, greet) error { ran.Store(true); return nil }),
	}})
	job := b.add(t, "greet", map[string]int{"name": 42}, nil)
	if err := w.RunOnce(b.ctx); err != nil {
		t.Fatal(err)
	}
	if ran.Load() {
		t.Fatal("handler ran with an undecodable payload")
	}
	r := b.job(t, job.ID)
	if msg := deref(r.LastError); msg == nil || !strings.Contains(msg.(string), `task "greet"`) || !strings.Contains(msg.(string), "cannot unmarshal") {
		t.Fatalf("last_error = %v", msg)
	}
}

func TestNamedQueueRunsOneJobAtATimeAcrossWorkers(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var running, maxRunning atomic.Int32
	ranBy := map[string]int{}
	var mu sync.Mutex
	var done atomic.Int32
	var workers []*core.Worker
	var sinks []*logSink
	task := core.RawTask("serial", func(ctx context.Context, j *core.Job) error {
		n := running.Add(1)
		defer running.Add(-1)
		for {
			m := maxRunning.Load()
			if n <= m || maxRunning.CompareAndSwap(m, n) {
				break
			}
		}
		time.Sleep(2 * time.Millisecond) // widen any overlap window
		mu.Lock()
		ranBy[j.LockedBy]++
		mu.Unlock()
		done.Add(1)
		return nil
	})
	const n = 30
	var jobs []core.NewJob
	for i := 0; i < n; i++ {
		jobs = append(jobs, core.NewJob{Identifier: "serial", Spec: core.JobSpec{QueueName: "one-at-a-time"}})
	}
	if _, err := b.utils.AddJobs(b.ctx, jobs); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		w, sink := b.worker(t, core.WorkerOptions{Concurrency: 4, PollInterval: 20 * time.Millisecond, Tasks: []core.Task{task}})
		workers = append(workers, w)
		sinks = append(sinks, sink)
		runInBackground(t, w)
	}
	deadline := time.Now().Add(30 * time.Second)
	for done.Load() != n {
		if time.Now().After(deadline) {
			recs := sinkRecs(sinks[0])
			t.Fatalf("timed out: %d of %d ran; jobs %+v; queues locked by %v\nactivity: %v\nworker 0 log tail:\n%s\nworker 1 log tail:\n%s",
				done.Load(), n, b.jobs(t), b.strings(t, "select coalesce(locked_by, '-') from S._private_job_queues"),
				b.strings(t, "select state || ' ' || coalesce(wait_event_type, '') || ' ' || left(query, 80) from pg_stat_activity where state <> 'idle' and backend_type = 'client backend'"),
				strings.Join(recs[max(0, len(recs)-15):], "\n"), strings.Join(sinkRecs(sinks[1])[max(0, len(sinkRecs(sinks[1]))-15):], "\n"))
		}
		time.Sleep(5 * time.Millisecond)
	}
	if m := maxRunning.Load(); m != 1 {
		t.Fatalf("%d jobs of one queue ran at once", m)
	}
	mu.Lock()
	defer mu.Unlock()
	for by := range ranBy {
		if by != workers[0].ID() && by != workers[1].ID() {
			t.Fatalf("job locked by unknown %q", by)
		}
	}
	eventually(t, "queue unlocked", func() bool {
		return b.queryInt(t, "select count(*) from S._private_job_queues where locked_by is not null") == 0
	})
}

func TestJobsWithoutQueueRunInParallel(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const n = 4
	var started atomic.Int32
	all := make(chan struct{})
	w, _ := b.worker(t, core.WorkerOptions{Concurrency: n, Tasks: []core.Task{
		core.RawTask("par", func(ctx context.Context, _ *core.Job) error {
			if started.Add(1) == n {
				close(all)
			}
			select {
			case <-all: // only reachable if all n run at the same time
				return nil
			case <-ctx.Done():
				return ctx.Err()
			}
		}),
	}})
	for i := 0; i < n; i++ {
		b.add(t, "par", nil, nil)
	}
	ctx, cancel := context.WithTimeout(b.ctx, 30*time.Second)
	defer cancel()
	if err := w.RunOnce(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(b.jobs(t)); n != 0 {
		t.Fatalf("%d jobs left; they did not all run at once", n)
	}
}

func TestNotifyWakesIdleWorkerLongBeforePoll(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ran := make(chan int64, 1)
	w, sink := b.worker(t, core.WorkerOptions{PollInterval: time.Hour, Tasks: []core.Task{
		core.RawTask("wake", func(_ context.Context, j *core.Job) error { ran <- j.ID; return nil }),
	}})
	runInBackground(t, w)
	sink.events.Wait(t, testkit.Listened, 1)
	job := b.add(t, "wake", nil, nil)
	select {
	case id := <-ran:
		if id != job.ID {
			t.Fatalf("ran %d", id)
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("job added to an idle worker did not run; the poll interval is an hour, so NOTIFY did not wake it\njobs: %+v\nlog:\n%s",
			b.jobs(t), strings.Join(sinkRecs(sink), "\n"))
	}
}

func TestWorkerPicksUpJobsAfterLosingItsListenConnection(t *testing.T) {
	t.Parallel()
	b := setup(t)
	// A pool with its own application name, so the test can find and kill
	// exactly this worker's LISTEN backend.
	cfg, err := pgxpool.ParseConfig(pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	app := "gw-" + b.schema
	cfg.ConnConfig.RuntimeParams["application_name"] = app
	pool, err := pgxpool.NewWithConfig(b.ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	ran := make(chan int64, 2)
	w, sink := b.worker(t, core.WorkerOptions{Database: pgxdriver.New(pool), PollInterval: time.Hour, Tasks: []core.Task{
		core.RawTask("wake", func(_ context.Context, j *core.Job) error { ran <- j.ID; return nil }),
	}})
	runInBackground(t, w)
	sink.events.Wait(t, testkit.Listened, 1)
	killed := b.queryInt(t, `select count(pg_terminate_backend(pid)) from pg_stat_activity
		where application_name = $1 and query ilike 'listen%'`, app)
	if killed != 1 {
		t.Fatalf("terminated %d listening backends, want 1", killed)
	}
	eventually(t, "the listener to reconnect", func() bool {
		return sink.events.Has(testkit.Relistened) || sink.events.Count(testkit.Listened) >= 2
	})
	job := b.add(t, "wake", nil, nil)
	select {
	case id := <-ran:
		if id != job.ID {
			t.Fatalf("ran %d", id)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("job added after the LISTEN connection was lost never ran")
	}
}

func sinkRecs(s *logSink) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.recs)
}

func TestRunReturnsNilOnCancel(t *testing.T) {
	t.Parallel()
	b := setup(t)
	w, sink := b.worker(t, core.WorkerOptions{Tasks: []core.Task{core.RawTask("x", func(context.Context, *core.Job) error { return nil })}})
	stop := runInBackground(t, w)
	sink.events.Wait(t, "worker:start", 1)
	if err := stop(); err != nil {
		t.Fatalf("Run returned %v after cancel", err)
	}
	if err := w.RunOnce(b.ctx); err != nil {
		t.Fatalf("the worker can run again after stopping: %v", err)
	}
}

func TestShutdownReturnsInterruptedJobsWithoutBurningAnAttempt(t *testing.T) {
	t.Parallel()
	b := setup(t)
	started := make(chan struct{}, 1)
	w, _ := b.worker(t, core.WorkerOptions{GracePeriod: 20 * time.Millisecond, InterruptedRetryDelay: time.Hour,
		Tasks: []core.Task{core.RawTask("slow", func(ctx context.Context, _ *core.Job) error {
			started <- struct{}{}
			<-ctx.Done()
			return ctx.Err()
		})}})
	job := b.add(t, "slow", nil, &core.JobSpec{QueueName: "q"})
	stop := runInBackground(t, w)
	<-started
	if err := stop(); err != nil {
		t.Fatalf("Run: %v", err)
	}
	var attempts int
	var locked bool
	var lastError string
	var delay float64
	if err := b.pool.QueryRow(b.ctx, b.sql(`select attempts, locked_at is not null or locked_by is not null, last_error,
		extract(epoch from run_at - updated_at)::float8 from S._private_jobs where id = $1`), job.ID).Scan(&attempts, &locked, &lastError, &delay); err != nil {
		t.Fatal(err)
	}
	if attempts != 0 || locked || !strings.Contains(lastError, "interrupted") || math.Abs(delay-3600) > 0.001 {
		t.Fatalf("attempts=%d locked=%v last_error=%q delay=%.3fs", attempts, locked, lastError, delay)
	}
	if n := b.queryInt(t, "select count(*) from S._private_job_queues where locked_by is not null"); n != 0 {
		t.Fatal("queue still locked after shutdown")
	}
}

func TestShutdownLetsRunningJobsFinishWithinGrace(t *testing.T) {
	t.Parallel()
	b := setup(t)
	started, release := make(chan struct{}, 1), make(chan struct{})
	w, _ := b.worker(t, core.WorkerOptions{GracePeriod: time.Minute, Tasks: []core.Task{
		core.RawTask("t", func(ctx context.Context, _ *core.Job) error {
			started <- struct{}{}
			<-release
			return ctx.Err() // nil: the context is not cancelled during the grace period
		})}})
	b.add(t, "t", nil, nil)
	stop := runInBackground(t, w)
	<-started
	errc := make(chan error, 1)
	go func() { errc <- stop() }()
	close(release)
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	if n := len(b.jobs(t)); n != 0 {
		t.Fatalf("%d jobs left; the job finishing during the grace period must complete", n)
	}
}

func TestHandlerIgnoringCancellationIsReturnedAndItsLateResultIgnored(t *testing.T) {
	t.Parallel()
	b := setup(t)
	started, release := make(chan struct{}, 1), make(chan struct{})
	finished := make(chan struct{})
	clock := clocktest.New(time.Now())
	w, _ := b.worker(t, core.WorkerOptions{GracePeriod: 10 * time.Millisecond, Clock: clock, Tasks: []core.Task{
		core.RawTask("stubborn", func(context.Context, *core.Job) error {
			started <- struct{}{}
			<-release
			defer close(finished)
			return nil
		})}})
	job := b.add(t, "stubborn", nil, nil)
	stop := runInBackground(t, w)
	<-started
	stopped := make(chan error, 1)
	go func() { stopped <- stop() }()
	// Shutdown waits out the grace period, cancels the handler's context,
	// and gives it a second more to return.
	fireNext(t, clock, "core.(*runner).shutdown")
	fireNext(t, clock, "core.(*runner).shutdown")
	if err := <-stopped; err != nil {
		t.Fatal(err)
	}
	if r := b.job(t, job.ID); r.Attempts != 0 || r.LockedBy != nil {
		t.Fatalf("abandoned job not returned: %+v", r)
	}
	close(release)
	<-finished
	if r := b.job(t, job.ID); r.Attempts != 0 {
		t.Fatalf("late result was recorded: %+v", r)
	}
}

func TestKeyReplaceAndRemoveWhileJobRuns(t *testing.T) {
	t.Parallel()
	b := setup(t)
	started := make(chan int64, 4)
	var mu sync.Mutex
	release := map[int64]chan error{}
	releaseOf := func(id int64) chan error {
		mu.Lock()
		defer mu.Unlock()
		if release[id] == nil {
			release[id] = make(chan error, 1)
		}
		return release[id]
	}
	w, _ := b.worker(t, core.WorkerOptions{Concurrency: 2, Tasks: []core.Task{
		core.RawTask("k", func(_ context.Context, j *core.Job) error { started <- j.ID; return <-releaseOf(j.ID) }),
	}})
	first := b.add(t, "k", map[string]int{"v": 1}, &core.JobSpec{JobKey: "key"})
	runInBackground(t, w)
	if id := <-started; id != first.ID {
		t.Fatalf("started %d", id)
	}
	// Replacing a running job's key adds a new job; the running one goes on.
	second := b.add(t, "k", map[string]int{"v": 2}, &core.JobSpec{JobKey: "key"})
	if second.ID == first.ID {
		t.Fatal("a running job was overwritten")
	}
	if r := b.job(t, first.ID); r.Key != nil || r.Attempts != r.MaxAttempts {
		t.Fatalf("running holder not detached: %+v", r)
	}
	if id := <-started; id != second.ID {
		t.Fatalf("started %d, want the replacement %d", id, second.ID)
	}
	// Removing the running replacement keeps it until it finishes; failing
	// then leaves it permanently failed, not retried.
	if _, err := b.utils.RemoveJob(b.ctx, "key"); err != nil {
		t.Fatal(err)
	}
	releaseOf(second.ID) <- errors.New("second fails")
	releaseOf(first.ID) <- nil // succeeds although detached
	eventually(t, "outcomes recorded", func() bool {
		rows := b.jobs(t)
		return len(rows) == 1 && rows[0].LockedBy == nil
	})
	r := b.jobs(t)[0]
	if r.ID != second.ID || r.Key != nil || r.Attempts != r.MaxAttempts || deref(r.LastError) != "second fails" {
		t.Fatalf("removed running job = %+v", r)
	}
}

func TestStaleLocksAreFreedAndTheJobsRun(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ran := &counter{}
	w, _ := b.worker(t, core.WorkerOptions{
		MinResetLockedInterval: 10 * time.Millisecond, MaxResetLockedInterval: 20 * time.Millisecond,
		PollInterval: 20 * time.Millisecond,
		Tasks:        []core.Task{core.RawTask("t", func(_ context.Context, j *core.Job) error { ran.record(j.ID); return nil })},
	})
	stale := b.add(t, "t", nil, &core.JobSpec{QueueName: "sq"})
	recent := b.add(t, "t", nil, nil)
	b.exec(t, "update S._private_jobs set locked_at = now() - interval '5 hours', locked_by = 'dead', attempts = 1 where id = $1", stale.ID)
	b.exec(t, "update S._private_job_queues set locked_at = now() - interval '5 hours', locked_by = 'dead'")
	b.exec(t, "update S._private_jobs set locked_at = now() - interval '1 hour', locked_by = 'alive' where id = $1", recent.ID)
	runInBackground(t, w)
	eventually(t, "the stale job to run", func() bool { return slices.Contains(ran.list(), stale.ID) })
	if slices.Contains(ran.list(), recent.ID) {
		t.Fatal("a job locked an hour ago was taken from its worker")
	}
	if r := b.job(t, recent.ID); deref(r.LockedBy) != "alive" {
		t.Fatalf("recent lock changed: %+v", r)
	}
}

func TestHandlerContextGivesJobLoggerAndUtils(t *testing.T) {
	t.Parallel()
	b := setup(t)
	sink := &logSink{}
	w, _ := b.worker(t, core.WorkerOptions{Logger: slog.New(sink), Tasks: []core.Task{
		core.RawTask("parent", func(ctx context.Context, j *core.Job) error {
			if core.JobFromContext(ctx) != j {
				return errors.New("JobFromContext is not the job")
			}
			core.LoggerFromContext(ctx).Info("hello from the job")
			_, err := core.UtilsFromContext(ctx).AddRawJob(ctx, "child", map[string]int64{"parent": j.ID}, nil)
			return err
		}),
	}})
	parent := b.add(t, "parent", nil, nil)
	if err := w.RunOnce(b.ctx); err != nil {
		t.Fatal(err)
	}
	var line string
	for _, r := range sinkRecs(sink) {
		if strings.Contains(r, "hello from the job") {
			line = r
		}
	}
	for _, field := range []string{fmt.Sprintf("job_id=%d", parent.ID), "task=parent", "attempts=1", "worker=" + w.ID()} {
		if !strings.Contains(line, field) {
			t.Fatalf("job log line %q lacks %s", line, field)
		}
	}
	rows := b.jobs(t)
	if len(rows) != 1 || rows[0].Task != "child" {
		t.Fatalf("rows = %+v", rows)
	}
	mustJSONEqual(t, rows[0].Payload, fmt.Sprintf(`{"parent":%d}`, parent.ID))
}

// Not parallel: worker:migrate is server-wide, and would stop other tests'
// workers.
func TestBreakingMigrationStopsTheWorker(t *testing.T) {
	b := setup(t)
	w, sink := b.worker(t, core.WorkerOptions{Tasks: []core.Task{core.RawTask("x", func(context.Context, *core.Job) error { return nil })}})
	errc := make(chan error, 1)
	go func() { errc <- w.Run(b.ctx) }()
	sink.events.Wait(t, testkit.Listened, 1)
	// Another process applies a breaking migration 21 to this schema.
	b.exec(t, "insert into S.migrations (id, breaking) values (21, true)")
	b.exec(t, `select pg_notify('worker:migrate', '{"migrationNumber":21,"breaking":true}')`)
	select {
	case err := <-errc:
		var bm *core.BreakingMigrationError
		if !errors.As(err, &bm) || bm.Migration != 21 {
			t.Fatalf("Run returned %v, want *BreakingMigrationError for 21", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("worker kept running after a breaking migration")
	}
}

func TestNewWorkerValidatesOptions(t *testing.T) {
	t.Parallel()
	b := setupUnmigrated(t)
	ok := core.RawTask("ok", func(context.Context, *core.Job) error { return nil })
	cases := map[string]struct {
		opts  core.WorkerOptions
		field string
	}{
		"no database":    {core.WorkerOptions{Tasks: []core.Task{ok}}, "WorkerOptions.Database"},
		"no tasks":       {core.WorkerOptions{Database: b.db}, "WorkerOptions.Tasks"},
		"duplicate":      {core.WorkerOptions{Database: b.db, Tasks: []core.Task{ok, ok}}, "WorkerOptions.Tasks[1]"},
		"empty id":       {core.WorkerOptions{Database: b.db, Tasks: []core.Task{core.RawTask("", func(context.Context, *core.Job) error { return nil })}}, "WorkerOptions.Tasks[0]"},
		"nil handler":    {core.WorkerOptions{Database: b.db, Tasks: []core.Task{core.RawTask("n", nil)}}, "WorkerOptions.Tasks[0]"},
		"concurrency":    {core.WorkerOptions{Database: b.db, Tasks: []core.Task{ok}, Concurrency: -1}, "WorkerOptions.Concurrency"},
		"poll interval":  {core.WorkerOptions{Database: b.db, Tasks: []core.Task{ok}, PollInterval: time.Nanosecond}, "WorkerOptions.PollInterval"},
		"empty flag":     {core.WorkerOptions{Database: b.db, Tasks: []core.Task{ok}, ForbiddenFlags: []string{""}}, "WorkerOptions.ForbiddenFlags[0]"},
		"sweep interval": {core.WorkerOptions{Database: b.db, Tasks: []core.Task{ok}, MinResetLockedInterval: time.Hour, MaxResetLockedInterval: time.Minute}, "WorkerOptions.MaxResetLockedInterval"},
	}
	for name, c := range cases {
		_, err := core.NewWorker(c.opts)
		if err == nil || !errors.Is(err, core.ErrInvalidInput) || !strings.Contains(err.Error(), c.field) {
			t.Errorf("%s: err = %v, want one naming %s", name, err, c.field)
		}
	}
}

func TestFailureMessageWithNULIsRecorded(t *testing.T) {
	t.Parallel()
	b := setup(t)
	w, _ := b.worker(t, core.WorkerOptions{Tasks: []core.Task{
		core.RawTask("nul", func(context.Context, *core.Job) error { return errors.New("bad\x00byte \xff") }),
	}})
	job := b.add(t, "nul", nil, nil)
	if err := w.RunOnce(b.ctx); err != nil {
		t.Fatal(err)
	}
	if r := b.job(t, job.ID); r.LockedBy != nil || r.Attempts != 1 || deref(r.LastError) != "badbyte \uFFFD" {
		t.Fatalf("row = %+v", r)
	}
}

// worker:migrate names no schema: a fresh install elsewhere on the server
// (breaking migrations 1, 3, 11, ...) and a newer breaking migration of
// another schema must not stop this worker. Not parallel: it sends
// server-wide notifications.
func TestMigrationsOfOtherSchemasDoNotStopTheWorker(t *testing.T) {
	b := setup(t)
	ran := make(chan int64, 1)
	w, sink := b.worker(t, core.WorkerOptions{PollInterval: time.Hour, Tasks: []core.Task{
		core.RawTask("x", func(_ context.Context, j *core.Job) error { ran <- j.ID; return nil })}})
	errc := make(chan error, 1)
	ctx, cancel := context.WithCancel(b.ctx)
	defer cancel()
	go func() { errc <- w.Run(ctx) }()
	sink.events.Wait(t, testkit.Listened, 1)
	other := setupUnmigrated(t)
	if err := other.utils.Migrate(b.ctx); err != nil {
		t.Fatal(err)
	}
	other.exec(t, "insert into S.migrations (id, breaking) values (21, true)")
	other.exec(t, `select pg_notify('worker:migrate', '{"migrationNumber":21,"breaking":true}')`)
	// The notifications are delivered in order: once a job added after them
	// runs, the worker has seen them all and kept going.
	job := b.add(t, "x", nil, nil)
	select {
	case id := <-ran:
		if id != job.ID {
			t.Fatalf("ran %d", id)
		}
	case err := <-errc:
		t.Fatalf("worker stopped: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("job never ran")
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatalf("Run: %v", err)
	}
}

// graphile-worker's GC_TASK_IDENTIFIERS, which knows nothing of gworker's
// worker registry, may delete the task row of a running worker's task
// while no job uses it (gworker's Cleanup keeps it); add_jobs then creates
// a new row, with a new id, for the next job. The worker still runs that
// job.
func TestWorkerRunsJobsOfATaskRowRecreatedAfterGC(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ran := &counter{}
	w, _ := b.worker(t, core.WorkerOptions{PollInterval: 50 * time.Millisecond,
		Tasks: []core.Task{core.RawTask("gc_me", func(_ context.Context, j *core.Job) error { ran.record(j.ID); return nil })}})
	stop := runInBackground(t, w)
	first := b.add(t, "gc_me", nil, nil)
	eventually(t, "the first job to run", func() bool { return len(ran.list()) == 1 })
	eventually(t, "the first job to be recorded", func() bool { return len(b.jobs(t)) == 0 })
	oldID := b.queryInt(t, "select id from S._private_tasks where identifier = 'gc_me'")
	// What graphile-worker's cleanup runs for GC_TASK_IDENTIFIERS.
	b.exec(t, "delete from S._private_tasks t where not exists (select 1 from S._private_jobs j where j.task_id = t.id)")
	if n := b.queryInt(t, "select count(*) from S._private_tasks where identifier = 'gc_me'"); n != 0 {
		t.Fatalf("GC left the task row (%d)", n)
	}
	second := b.add(t, "gc_me", nil, nil)
	if newID := b.queryInt(t, "select id from S._private_tasks where identifier = 'gc_me'"); newID == oldID {
		t.Fatalf("the task row kept id %d; the test needs a new one", oldID)
	}
	eventually(t, "the job of the recreated task to run", func() bool { return len(ran.list()) == 2 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if got := ran.list(); !slices.Equal(got, []int64{first.ID, second.ID}) {
		t.Fatalf("ran %v", got)
	}
	if n := len(b.jobs(t)); n != 0 {
		t.Fatalf("%d jobs left", n)
	}
}
