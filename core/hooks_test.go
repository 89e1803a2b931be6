package core_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gworker/gworker/core"
	"github.com/gworker/gworker/internal/testkit"
)

// hookRecorder records the events a worker or client reports.
type hookRecorder struct {
	mu     sync.Mutex
	events []core.Event
}

func (r *hookRecorder) record(_ context.Context, e core.Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

func (r *hookRecorder) all() []core.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

// names lists the names of all events, in order.
func (r *hookRecorder) names() []string {
	var out []string
	for _, e := range r.all() {
		out = append(out, e.EventName())
	}
	return out
}

// has reports whether an event with this name was recorded.
func (r *hookRecorder) has(name string) bool { return slices.Contains(r.names(), name) }

// ofJob lists, in order, the names of the events about job id (a fetch
// that locked it included).
func (r *hookRecorder) ofJob(id int64) []string {
	var out []string
	for _, e := range r.all() {
		var j *core.Job
		switch e := e.(type) {
		case core.JobsFetched:
			if slices.ContainsFunc(e.Jobs, func(j *core.Job) bool { return j.ID == id }) {
				out = append(out, e.EventName())
			}
			continue
		case core.JobStarted:
			j = e.Job
		case core.JobCompleted:
			j = e.Job
		case core.JobFailed:
			j = e.Job
		case core.JobPermanentlyFailed:
			j = e.Job
		case core.JobInterrupted:
			j = e.Job
		case core.JobCancelled:
			j = e.Job
		case core.JobSkipped:
			j = e.Job
		case core.JobAdded:
			j = e.Job
		}
		if j != nil && j.ID == id {
			out = append(out, e.EventName())
		}
	}
	return out
}

// find returns the first recorded event of type E.
func find[E core.Event](r *hookRecorder) (E, bool) {
	for _, e := range r.all() {
		if v, ok := e.(E); ok {
			return v, true
		}
	}
	var zero E
	return zero, false
}

func TestHookEventsInOrderForSuccessRetryAndPermanentFailure(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rec := &hookRecorder{}
	w, _ := b.worker(t, core.WorkerOptions{Concurrency: 3, Hooks: core.Hooks{OnEvent: rec.record}, Tasks: []core.Task{
		core.RawTask("ok", func(context.Context, *core.Job) error { return nil }),
		core.RawTask("flaky", func(context.Context, *core.Job) error { return errors.New("boom: flaky") }),
	}})
	ok := b.add(t, "ok", nil, nil)
	retry := b.add(t, "flaky", nil, &core.JobSpec{MaxAttempts: 3})
	doomed := b.add(t, "flaky", nil, &core.JobSpec{MaxAttempts: 1})
	if err := w.RunOnce(b.ctx); err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct {
		job  *core.Job
		want []string
	}{
		{ok, []string{"worker:fetch", "job:start", "job:success"}},
		{retry, []string{"worker:fetch", "job:start", "job:error"}},
		{doomed, []string{"worker:fetch", "job:start", "job:error", "job:failed"}},
	} {
		if got := rec.ofJob(c.job.ID); !slices.Equal(got, c.want) {
			t.Errorf("events of job %d (%s, max %d): %v, want %v", c.job.ID, c.job.TaskIdentifier, c.job.MaxAttempts, got, c.want)
		}
	}
	names := rec.names()
	if names[0] != "worker:start" || names[len(names)-2] != "worker:shutdown" || names[len(names)-1] != "worker:stop" {
		t.Errorf("worker events out of place: %v", names)
	}
	for _, e := range rec.all() {
		switch e := e.(type) {
		case core.WorkerStarted:
			if e.WorkerID != w.ID() || !e.Once || e.Concurrency != 3 || e.Schema != b.schema || e.Utils == nil || len(e.Tasks) != 2 {
				t.Errorf("worker:start %+v", e)
			}
		case core.WorkerShutdown:
			if e.Reason != core.ShutdownDrained || e.Running != 0 || e.Err != nil {
				t.Errorf("worker:shutdown %+v, want drained", e)
			}
		case core.JobCompleted:
			if e.Duration <= 0 || e.Job.ID != ok.ID {
				t.Errorf("job:success %+v", e)
			}
		case core.JobFailed:
			wantRetry := e.Job.ID == retry.ID
			if e.WillRetry != wantRetry || e.Message != "boom: flaky" || e.Err == nil || e.Job.Attempts != 1 {
				t.Errorf("job:error of job %d: %+v, want will-retry %v and the handler's error", e.Job.ID, e, wantRetry)
			}
		case core.JobPermanentlyFailed:
			if e.Job.ID != doomed.ID || e.Message != "boom: flaky" {
				t.Errorf("job:failed %+v", e)
			}
		}
	}
	// The rows agree with the events.
	rows := b.jobs(t)
	if len(rows) != 2 || rows[0].ID != retry.ID || rows[0].Attempts != 1 || rows[1].ID != doomed.ID || rows[1].Attempts != 1 {
		t.Fatalf("rows after the run: %+v", rows)
	}
}

func TestHookEventsForShutdownInterruption(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rec := &hookRecorder{}
	w, _ := b.worker(t, core.WorkerOptions{Concurrency: 1, GracePeriod: -1, LocalQueue: core.LocalQueueOptions{Size: 5},
		Hooks: core.Hooks{OnEvent: rec.record},
		Tasks: []core.Task{core.RawTask("blocks", func(ctx context.Context, _ *core.Job) error {
			<-ctx.Done()
			return context.Cause(ctx)
		})}})
	running := b.add(t, "blocks", nil, &core.JobSpec{Priority: -1})
	waiting := b.add(t, "blocks", nil, nil)
	stop := runInBackground(t, w)
	eventually(t, "the job to start", func() bool { return rec.has("job:start") })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if got, want := rec.ofJob(running.ID), []string{"worker:fetch", "job:start", "job:interrupted"}; !slices.Equal(got, want) {
		t.Errorf("events of the running job: %v, want %v", got, want)
	}
	if got, want := rec.ofJob(waiting.ID), []string{"worker:fetch"}; !slices.Equal(got, want) {
		t.Errorf("events of the waiting job: %v, want %v", got, want)
	}
	sd, _ := find[core.WorkerShutdown](rec)
	if sd.Reason != core.ShutdownCancelled || sd.Running != 1 || sd.Buffered != 1 || !errors.Is(sd.Err, context.Canceled) {
		t.Errorf("worker:shutdown %+v, want cancelled with 1 running and 1 buffered", sd)
	}
	rel, _ := find[core.LocalQueueEvent](rec)
	if rel.Change != core.LocalQueueReleased || len(rel.Jobs) != 1 || rel.Jobs[0].ID != waiting.ID {
		t.Errorf("local queue event %+v, want the waiting job released", rel)
	}
	in, _ := find[core.JobInterrupted](rec)
	if in.Abandoned || in.Err == nil {
		t.Errorf("job:interrupted %+v", in)
	}
	if names := rec.names(); names[len(names)-1] != "worker:stop" {
		t.Errorf("last event %s, want worker:stop", names[len(names)-1])
	}
	for _, j := range []*core.Job{running, waiting} {
		if r := b.job(t, j.ID); r.Attempts != 0 || r.LockedBy != nil {
			t.Errorf("job %d after shutdown: %+v, want attempts 0 and unlocked", j.ID, r)
		}
	}
	if r := b.job(t, running.ID); !strings.Contains(deref(r.LastError).(string), "interrupted") {
		t.Errorf("interrupted job's last_error %v", deref(r.LastError))
	}
}

func TestLocalQueueModeChangesAreEvents(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rec := &hookRecorder{}
	bl := newBlocker()
	w, _ := b.worker(t, core.WorkerOptions{Concurrency: 1, PollInterval: time.Hour, Hooks: core.Hooks{OnEvent: rec.record},
		LocalQueue: core.LocalQueueOptions{Size: 10, TTL: 50 * time.Millisecond,
			RefetchDelay: core.RefetchDelayOptions{Duration: 20 * time.Millisecond, MaxAbortThreshold: 1000}},
		Tasks: []core.Task{bl.task()}})
	runInBackground(t, w)
	// The first fetch finds nothing: a delay starts, then expires.
	eventually(t, "a refetch delay to expire", func() bool { return rec.has("localQueue:refetchDelay:expired") })
	_, err := b.utils.AddJobs(b.ctx, []core.NewJob{{Identifier: "lq", Spec: core.JobSpec{Priority: -1}}, {Identifier: "lq"}})
	if err != nil {
		t.Fatal(err)
	}
	<-bl.started
	// The second job waits behind the blocked first one until its TTL.
	eventually(t, "the TTL to expire", func() bool { return rec.has("localQueue:ttlExpired") })
	close(bl.release)
	eventually(t, "both jobs to run", func() bool { return len(bl.ran.list()) == 2 })
	var sawStart, sawTTL bool
	for _, e := range rec.all() {
		if e, ok := e.(core.LocalQueueEvent); ok {
			switch e.Change {
			case core.RefetchDelayStarted:
				sawStart = sawStart || (e.Delay >= 10*time.Millisecond && e.Delay <= 30*time.Millisecond && e.WorkerID == w.ID())
			case core.LocalQueueTTLExpired:
				sawTTL = sawTTL || slices.ContainsFunc(e.Jobs, func(j *core.Job) bool { return j.Priority == 0 })
			}
		}
	}
	if !sawStart || !sawTTL {
		t.Errorf("refetch delay start seen %v, TTL expiry of the waiting job seen %v; events %v", sawStart, sawTTL, rec.names())
	}
}

func TestBeforeJobRunSkipReturnsTheJobUntouched(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rec := &hookRecorder{}
	var ran atomic.Int32
	w, sink := b.worker(t, core.WorkerOptions{PollInterval: time.Hour, Plugins: []core.Plugin{
		core.NewPlugin("gate", core.Hooks{BeforeJobRun: func(context.Context, *core.Job) core.Decision { return core.Skip() }}),
	}, Hooks: core.Hooks{OnEvent: rec.record},
		Tasks: []core.Task{core.RawTask("gated", func(context.Context, *core.Job) error { ran.Add(1); return nil })}})
	job := b.add(t, "gated", map[string]int{"n": 1}, &core.JobSpec{MaxAttempts: 4})
	b.exec(t, "update S._private_jobs set last_error = 'earlier failure' where id = $1", job.ID)
	runInBackground(t, w)
	eventually(t, "the job to be skipped", func() bool { return rec.has("job:skipped") })
	eventually(t, "the skipped job to be back in the queue", func() bool {
		r := b.job(t, job.ID)
		return r.LockedBy == nil && r.Attempts == 0
	})
	r := b.job(t, job.ID)
	if !r.RunAt.Equal(job.RunAt) || deref(r.LastError) != "earlier failure" || r.Payload != `{"n":1}` || r.MaxAttempts != 4 {
		t.Fatalf("skipped job %+v: want run_at %v, last_error and payload unchanged", r, job.RunAt)
	}
	if n := ran.Load(); n != 0 {
		t.Fatalf("the handler ran %d times", n)
	}
	skipped, _ := find[core.JobSkipped](rec)
	if skipped.Hook != "gate" || skipped.Job.ID != job.ID {
		t.Errorf("job:skipped %+v", skipped)
	}
	if got := rec.ofJob(job.ID); slices.Contains(got, "job:start") {
		t.Errorf("a skipped job reported job:start: %v", got)
	}
	if !sink.has("skipped by a hook") {
		t.Error("the skip was not logged")
	}
}

// ctxMark is a context key AroundJobRun sets for the handler.
type ctxMark struct{}

func TestRunInterceptorsSteerOutcomes(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rec := &hookRecorder{}
	var ran sync.Map // task -> true
	handler := func(ctx context.Context, j *core.Job) error {
		ran.Store(j.TaskIdentifier, ctx.Value(ctxMark{}))
		if j.TaskIdentifier == "fails_but_forgiven" {
			return errors.New("handler failed")
		}
		return nil
	}
	var tasks []core.Task
	for _, id := range []string{"refused", "succeeds_but_rejected", "fails_but_forgiven", "wrapped", "not_run_by_wrapper"} {
		tasks = append(tasks, core.RawTask(id, handler))
	}
	w, _ := b.worker(t, core.WorkerOptions{Hooks: core.Hooks{
		OnEvent: rec.record,
		BeforeJobRun: func(_ context.Context, j *core.Job) core.Decision {
			if j.TaskIdentifier == "refused" {
				return core.Fail("refused: maintenance window")
			}
			return core.Continue()
		},
		AroundJobRun: func(ctx context.Context, j *core.Job, run func(context.Context) error) error {
			if j.TaskIdentifier == "not_run_by_wrapper" {
				return nil // forgets to run it
			}
			return run(context.WithValue(ctx, ctxMark{}, "wrapped"))
		},
		AfterJobRun: func(_ context.Context, j *core.Job, err error) error {
			switch j.TaskIdentifier {
			case "succeeds_but_rejected":
				return errors.New("rejected after the run")
			case "fails_but_forgiven":
				return nil
			}
			return err
		},
	}, Tasks: tasks})
	ids := map[string]int64{}
	for _, task := range []string{"refused", "succeeds_but_rejected", "fails_but_forgiven", "wrapped", "not_run_by_wrapper"} {
		ids[task] = b.add(t, task, nil, nil).ID
	}
	now := b.dbNow(t)
	if err := w.RunOnce(b.ctx); err != nil {
		t.Fatal(err)
	}

	rows := map[int64]jobRow{}
	for _, r := range b.jobs(t) {
		rows[r.ID] = r
	}
	// Fail: not run, failed with the message, retried later.
	if _, did := ran.Load("refused"); did {
		t.Error("the refused job's handler ran")
	}
	if r, ok := rows[ids["refused"]]; !ok || r.Attempts != 1 || deref(r.LastError) != "refused: maintenance window" || !r.RunAt.After(now) || r.LockedBy != nil {
		t.Errorf("refused job row %+v (present %v), want attempts 1, the message as last_error, run_at later", r, ok)
	}
	if got := rec.ofJob(ids["refused"]); !slices.Equal(got, []string{"worker:fetch", "job:error"}) {
		t.Errorf("refused job's events %v", got)
	}
	// AfterJobRun turns success into failure, and failure into success.
	if r, ok := rows[ids["succeeds_but_rejected"]]; !ok || r.Attempts != 1 || deref(r.LastError) != "rejected after the run" {
		t.Errorf("succeeds_but_rejected row %+v (present %v)", r, ok)
	}
	if _, ok := rows[ids["fails_but_forgiven"]]; ok {
		t.Error("fails_but_forgiven is still in the table; AfterJobRun made it a success")
	}
	// AroundJobRun gives the handler its context; forgetting to run fails.
	if v, _ := ran.Load("wrapped"); v != "wrapped" {
		t.Errorf("the handler saw context value %v, want the one AroundJobRun set", v)
	}
	if _, ok := rows[ids["wrapped"]]; ok {
		t.Error("wrapped job not completed")
	}
	if _, did := ran.Load("not_run_by_wrapper"); did {
		t.Error("not_run_by_wrapper ran")
	}
	if r, ok := rows[ids["not_run_by_wrapper"]]; !ok || !strings.Contains(deref(r.LastError).(string), "returned without running the job") {
		t.Errorf("not_run_by_wrapper row %+v (present %v), want a failure saying the job was not run", r, ok)
	}
	if len(rows) != 3 {
		t.Errorf("%d rows left, want 3", len(rows))
	}
}

func TestPanickingHooksAreLoggedAndLoseNoJob(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var ran atomic.Int32
	boom := func() { panic("hook bug") }
	w, sink := b.worker(t, core.WorkerOptions{Plugins: []core.Plugin{core.NewPlugin("buggy", core.Hooks{
		OnEvent:      func(context.Context, core.Event) { boom() },
		BeforeJobRun: func(context.Context, *core.Job) core.Decision { boom(); return core.Skip() },
		AroundJobRun: func(context.Context, *core.Job, func(context.Context) error) error { boom(); return nil },
		AfterJobRun:  func(context.Context, *core.Job, error) error { boom(); return errors.New("never") },
		BeforeSchedule: func(_ context.Context, j *core.ScheduledJob) core.Decision {
			j.Payload = json.RawMessage(`{"half":"done"}`)
			j.Spec.Priority = 9
			boom()
			return core.Skip()
		},
		AroundAdd: func(context.Context, []*core.ScheduledJob, func(context.Context) error) error { boom(); return nil },
	})}, Tasks: []core.Task{core.RawTask("t", func(context.Context, *core.Job) error { ran.Add(1); return nil })}})
	// The worker's client carries the worker's hooks.
	job, err := w.Utils().AddRawJob(b.ctx, "t", map[string]int{"n": 1}, nil)
	if err != nil {
		t.Fatalf("add through panicking hooks: %v", err)
	}
	if r := b.job(t, job.ID); r.Payload != `{"n":1}` || r.Priority != 0 {
		t.Fatalf("added job %+v: a panicking BeforeSchedule's changes were kept", r)
	}
	if err := w.RunOnce(b.ctx); err != nil {
		t.Fatal(err)
	}
	if ran.Load() != 1 {
		t.Fatalf("handler ran %d times, want once", ran.Load())
	}
	if n := len(b.jobs(t)); n != 0 {
		t.Fatalf("%d jobs left; the job should have completed despite the hooks", n)
	}
	for _, hook := range []string{"OnEvent", "BeforeJobRun", "AroundJobRun", "AfterJobRun", "BeforeSchedule", "AroundAdd"} {
		if !sink.has("hook panicked; ignored plugin=buggy hook=" + hook) {
			t.Errorf("no log of the panicking %s hook", hook)
		}
	}
}

// scheduleRewriter is a BeforeSchedule hook used by the tests of the add
// paths: jobs of task "rewrite" get "hooked": true and queue "hooked",
// "skip" is skipped, "refuse" refused.
type scheduleRewriter struct {
	mu      sync.Mutex
	sources []core.AddSource
	crons   []core.CronJobInfo
}

func (s *scheduleRewriter) hook(ctx context.Context, j *core.ScheduledJob) core.Decision {
	s.mu.Lock()
	s.sources = append(s.sources, j.Source)
	if j.Cron != nil {
		s.crons = append(s.crons, *j.Cron)
	}
	s.mu.Unlock()
	switch {
	case strings.HasPrefix(j.Task, "skip"):
		return core.Skip()
	case strings.HasPrefix(j.Task, "refuse"):
		return core.Fail("not today")
	case strings.HasPrefix(j.Task, "rewrite"):
		var p map[string]any
		if err := json.Unmarshal(j.Payload, &p); err != nil {
			panic(err)
		}
		p["hooked"] = true
		if v := ctx.Value(ctxMark{}); v != nil {
			p["around"] = v
		}
		j.Payload, _ = json.Marshal(p)
		j.Spec.QueueName = "hooked"
		j.Spec.Priority = 3
	}
	return core.Continue()
}

func (s *scheduleRewriter) seen() []core.AddSource {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.sources)
}

type batchItem struct {
	N int `json:"n"`
}

func (batchItem) TaskIdentifier() string { return "batch_items" }

func TestBeforeScheduleOnClientAdds(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rw := &scheduleRewriter{}
	rec := &hookRecorder{}
	var arounds atomic.Int32
	u, err := core.NewUtils(b.db, core.UtilsOptions{Schema: b.schema, Logger: slog.New(&logSink{}), Hooks: core.Hooks{
		OnEvent:        rec.record,
		BeforeSchedule: rw.hook,
		AroundAdd: func(ctx context.Context, jobs []*core.ScheduledJob, add func(context.Context) error) error {
			arounds.Add(1)
			if len(jobs) == 0 {
				return errors.New("AroundAdd got no jobs")
			}
			return add(context.WithValue(ctx, ctxMark{}, "around"))
		},
	}})
	if err != nil {
		t.Fatal(err)
	}
	count := func() int { return b.queryInt(t, "select count(*) from S._private_jobs") }

	// AddRawJob: rewritten.
	j, err := u.AddRawJob(b.ctx, "rewrite", map[string]int{"a": 1}, &core.JobSpec{Priority: 1})
	if err != nil {
		t.Fatal(err)
	}
	r := b.job(t, j.ID)
	mustJSONEqual(t, r.Payload, `{"a":1,"hooked":true,"around":"around"}`)
	if deref(r.Queue) != "hooked" || r.Priority != 3 || j.QueueName != "hooked" {
		t.Errorf("rewritten job row %+v, returned %+v", r, j)
	}
	// Skip and Fail: nothing added, and the caller is told.
	if _, err := u.AddRawJob(b.ctx, "skip", nil, nil); !errors.Is(err, core.ErrAddSkipped) {
		t.Errorf("skipped add returned %v, want ErrAddSkipped", err)
	}
	var rej *core.AddRejectedError
	if _, err := u.AddRawJob(b.ctx, "refuse", nil, nil); !errors.As(err, &rej) || rej.Message != "not today" || rej.Task != "refuse" || rej.Hook != "Hooks" {
		t.Errorf("refused add returned %v, want an *AddRejectedError", err)
	}
	if n := count(); n != 1 {
		t.Fatalf("%d jobs after skip and refuse, want 1", n)
	}
	// AddJobs: skipped ones are left out; a refused one fails the call.
	jobs, err := u.AddJobs(b.ctx, []core.NewJob{{Identifier: "rewrite", Payload: map[string]int{"i": 1}}, {Identifier: "skip"},
		{Identifier: "rewrite", Payload: map[string]int{"i": 2}, Spec: core.JobSpec{JobKey: "k"}}})
	if err != nil || len(jobs) != 2 {
		t.Fatalf("AddJobs: %d jobs, %v; want 2", len(jobs), err)
	}
	for _, j := range jobs {
		if r := b.job(t, j.ID); deref(r.Queue) != "hooked" || !strings.Contains(r.Payload, `"hooked":true`) {
			t.Errorf("AddJobs row %+v not rewritten", r)
		}
	}
	if _, err := u.AddJobs(b.ctx, []core.NewJob{{Identifier: "rewrite"}, {Identifier: "refuse"}}); !errors.As(err, &rej) || rej.Field != "jobs[1]" {
		t.Errorf("AddJobs with a refused job returned %v", err)
	}
	if n := count(); n != 3 {
		t.Fatalf("%d jobs, want 3: a refused AddJobs adds nothing", n)
	}
	// AddBatchJob and AddJob go through AddRawJob's hooks.
	bj, err := core.AddBatchJob(b.ctx, u, []batchItem{{1}, {2}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if r := b.job(t, bj.ID); r.Queue != nil || r.Payload != `[{"n":1},{"n":2}]` {
		t.Errorf("batch job row %+v", r)
	}
	if _, err := u.AddJob(b.ctx, greet{Name: "x"}, nil); err != nil {
		t.Fatal(err)
	}
	for _, s := range rw.seen() {
		if s != core.AddFromClient {
			t.Errorf("source %q, want client", s)
		}
	}
	if n := len(rw.seen()); n != 10 {
		t.Errorf("BeforeSchedule called %d times, want 10", n)
	}
	if n := arounds.Load(); n != 7 {
		t.Errorf("AroundAdd called %d times, want once per call: 7", n)
	}
	if got := rec.ofJob(j.ID); !slices.Equal(got, []string{"job:added"}) {
		t.Errorf("events of the added job %v", got)
	}
	added := 0
	for _, e := range rec.all() {
		if e, ok := e.(core.JobAdded); ok && e.Source == core.AddFromClient {
			added++
		}
	}
	if added != 5 {
		t.Errorf("%d job:added events, want 5", added)
	}
}

func TestBeforeScheduleOnJobsAddedByHandlers(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rw := &scheduleRewriter{}
	var childID atomic.Int64
	w, _ := b.worker(t, core.WorkerOptions{Hooks: core.Hooks{BeforeSchedule: rw.hook}, Tasks: []core.Task{
		core.RawTask("parent", func(ctx context.Context, _ *core.Job) error {
			j, err := core.UtilsFromContext(ctx).AddRawJob(ctx, "rewrite_child", map[string]string{"from": "parent"}, nil)
			if err != nil {
				return err
			}
			childID.Store(j.ID)
			_, err = core.UtilsFromContext(ctx).AddRawJob(ctx, "skip_child", nil, nil)
			if !errors.Is(err, core.ErrAddSkipped) {
				return fmt.Errorf("skipped child: %v", err)
			}
			return nil
		}),
	}})
	b.add(t, "parent", nil, nil)
	if err := w.RunOnce(b.ctx); err != nil {
		t.Fatal(err)
	}
	rows := b.jobs(t)
	if len(rows) != 1 || rows[0].ID != childID.Load() || rows[0].Task != "rewrite_child" {
		t.Fatalf("rows %+v, want only the child (the parent completed)", rows)
	}
	mustJSONEqual(t, rows[0].Payload, `{"from":"parent","hooked":true}`)
	if deref(rows[0].Queue) != "hooked" || rows[0].Priority != 3 {
		t.Errorf("child row %+v not rewritten", rows[0])
	}
	// The test's own add has no hooks; the handler's two adds had.
	if got := rw.seen(); !slices.Equal(got, []core.AddSource{core.AddFromHandler, core.AddFromHandler}) {
		t.Errorf("sources %v, want handler twice", got)
	}
}

func TestBeforeScheduleOnCronJobs(t *testing.T) {
	t.Parallel()
	r := newCronRig(t, utc("2024-01-02T03:04:30Z"))
	rw := &scheduleRewriter{}
	rec := &hookRecorder{}
	ev, _ := r.start(t, "* * * * * rewrite_cron ?max=5 {a: 1}\n* * * * * skip_cron\n* * * * * refuse_cron\n* * * * * plain_cron\n",
		core.WorkerOptions{Hooks: core.Hooks{BeforeSchedule: rw.hook, OnEvent: rec.record}})
	r.to(t, utc("2024-01-02T03:05:00Z"))

	jobs := r.cronJobs(t, "rewrite_cron")
	if len(jobs) != 1 {
		t.Fatalf("%d rewrite_cron jobs, want 1", len(jobs))
	}
	j := jobs[0]
	mustJSONEqual(t, j.Payload, `{"a":1,"_cron":{"ts":"2024-01-02T03:05:00.000Z","backfilled":false},"hooked":true}`)
	if deref(j.Queue) != "hooked" || j.Priority != 3 || j.MaxAttempts != 5 || !j.RunAt.Equal(utc("2024-01-02T03:05:00Z")) {
		t.Errorf("rewritten cron job %+v", j.jobRow)
	}
	if n := len(r.cronJobs(t, "plain_cron")); n != 1 {
		t.Errorf("%d plain_cron jobs, want 1", n)
	}
	for _, task := range []string{"skip_cron", "refuse_cron"} {
		if n := len(r.cronJobs(t, task)); n != 0 {
			t.Errorf("%d %s jobs, want none", n, task)
		}
	}
	rw.mu.Lock()
	crons := slices.Clone(rw.crons)
	rw.mu.Unlock()
	if len(crons) != 4 || crons[0].Identifier != "rewrite_cron" || !crons[0].Minute.Equal(utc("2024-01-02T03:05:00Z")) || crons[0].Backfilled {
		t.Errorf("cron infos %+v", crons)
	}
	for _, s := range rw.seen() {
		if s != core.AddFromCron {
			t.Errorf("source %q, want cron", s)
		}
	}
	// Fired lists the entries that got a job; every observer sees the
	// cron events.
	sched := ev.of(core.CronScheduled)
	if len(sched) != 1 || !slices.Equal(sched[0].Fired, []string{"rewrite_cron", "plain_cron"}) {
		t.Errorf("cron:scheduled %+v", sched)
	}
	if !rec.has("cron:tick") || !rec.has("cron:scheduled") {
		t.Errorf("observer missed cron events: %v", rec.names())
	}
}

// Mailer is an interface held as an extension.
type Mailer interface{ Send(to string) string }

type fakeMailer struct{ from string }

func (m fakeMailer) Send(to string) string { return m.from + "->" + to }

type appConfig struct{ Name string }

func TestExtensionsReachHandlers(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var got []string
	var mu sync.Mutex
	w, _ := b.worker(t, core.WorkerOptions{
		Extensions: []core.Extension{core.WithExtension[Mailer](fakeMailer{from: "app"}), core.WithExtension(&appConfig{Name: "cfg"})},
		Tasks: []core.Task{core.RawTask("uses_ext", func(ctx context.Context, _ *core.Job) error {
			m, err := core.ExtensionFromContext[Mailer](ctx)
			if err != nil {
				return err
			}
			cfg, ok := core.LookupExtension[*appConfig](ctx)
			if !ok {
				return errors.New("no config")
			}
			_, missing := core.ExtensionFromContext[time.Duration](ctx)
			mu.Lock()
			got = append(got, m.Send("bob"), cfg.Name, fmt.Sprint(missing))
			mu.Unlock()
			return nil
		})},
	})
	b.add(t, "uses_ext", nil, nil)
	if err := w.RunOnce(b.ctx); err != nil {
		t.Fatal(err)
	}
	want := []string{"app->bob", "cfg",
		"gworker: the worker has no extension of type time.Duration; add core.WithExtension[time.Duration](value) to WorkerOptions.Extensions"}
	if !slices.Equal(got, want) {
		t.Fatalf("handler saw %q, want %q", got, want)
	}
	if n := len(b.jobs(t)); n != 0 {
		t.Fatalf("%d jobs left", n)
	}
	// Outside a handler there is none, and the error says why.
	_, err := core.ExtensionFromContext[Mailer](b.ctx)
	var me *core.MissingExtensionError
	if !errors.As(err, &me) || me.InHandler || !strings.Contains(err.Error(), "core_test.Mailer") || !strings.Contains(err.Error(), "not a job handler's") {
		t.Errorf("outside a handler: %v", err)
	}
	if _, ok := core.LookupExtension[Mailer](b.ctx); ok {
		t.Error("LookupExtension found an extension outside a handler")
	}
}

func TestHookOptionsAreValidated(t *testing.T) {
	t.Parallel()
	task := core.RawTask("t", func(context.Context, *core.Job) error { return nil })
	db := fakeDatabase{}
	_, err := core.NewWorker(core.WorkerOptions{Database: db, Tasks: []core.Task{task},
		Plugins:    []core.Plugin{core.NewPlugin("ok", core.Hooks{}), nil},
		Extensions: []core.Extension{core.WithExtension(1), {}, core.WithExtension(2)}})
	for _, want := range []string{"WorkerOptions.Plugins[1]: is nil", "WorkerOptions.Extensions[1]: is empty",
		`WorkerOptions.Extensions[2] "int": has the same type as Extensions[0]`} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("NewWorker error %v, want it to contain %q", err, want)
		}
	}
	if _, err := core.NewUtils(db, core.UtilsOptions{Plugins: []core.Plugin{nil}}); err == nil ||
		!strings.Contains(err.Error(), "UtilsOptions.Plugins[0]: is nil") {
		t.Errorf("NewUtils error %v", err)
	}
}

// fakeDatabase satisfies core.Database for validation tests; it is never
// called.
type fakeDatabase struct{ core.Database }

func TestJobCancelledEvent(t *testing.T) {
	t.Parallel()
	b := setup(t)
	rec := &hookRecorder{}
	w, sink := b.worker(t, core.WorkerOptions{Hooks: core.Hooks{OnEvent: rec.record},
		Tasks: []core.Task{core.RawTask("long", func(ctx context.Context, _ *core.Job) error {
			<-ctx.Done()
			return context.Cause(ctx)
		})}})
	job := b.add(t, "long", nil, nil)
	runInBackground(t, w)
	eventually(t, "the job to start", func() bool { return rec.has("job:start") })
	sink.events.Wait(t, testkit.Listened, 1)
	if _, err := b.utils.CancelJob(b.ctx, job.ID, "customer left"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the cancellation", func() bool { return rec.has("job:cancelled") })
	c, _ := find[core.JobCancelled](rec)
	if c.Job.ID != job.ID || c.Reason != "Cancelled: customer left" || c.Duration <= 0 {
		t.Fatalf("job:cancelled %+v", c)
	}
	if got := rec.ofJob(job.ID); !slices.Equal(got, []string{"worker:fetch", "job:start", "job:cancelled"}) {
		t.Fatalf("events of the cancelled job %v", got)
	}
}
