package core_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/gworker/gworker/core"
	"github.com/gworker/gworker/driver/pgxdriver"
	"github.com/gworker/gworker/internal/pgtest"
	"github.com/gworker/gworker/internal/testkit"
)

func TestCancelQueuedJob(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ran := &counter{}
	w, _ := b.worker(t, core.WorkerOptions{Tasks: []core.Task{core.RawTask("c", func(_ context.Context, j *core.Job) error { ran.record(j.ID); return nil })}})
	job := b.add(t, "c", nil, &core.JobSpec{JobKey: "k"})
	got, err := b.utils.CancelJobByKey(b.ctx, "k", "no longer needed")
	if err != nil || got.ID != job.ID {
		t.Fatalf("cancel: %+v %v", got, err)
	}
	if err := w.RunOnce(b.ctx); err != nil {
		t.Fatal(err)
	}
	if len(ran.list()) != 0 {
		t.Fatal("a cancelled job ran")
	}
	if r := b.job(t, job.ID); r.Attempts != r.MaxAttempts || deref(r.LastError) != "Cancelled: no longer needed" {
		t.Fatalf("row = %+v", r)
	}
	if _, err := b.utils.CancelJob(b.ctx, 999999, ""); !errors.Is(err, core.ErrJobNotFound) {
		t.Fatalf("missing job: %v", err)
	}
}

// cancelRunning starts a job on worker w, cancels it while its handler runs
// and returns the row once the worker recorded the outcome.
func TestCancelRunningJob(t *testing.T) {
	t.Parallel()
	for _, mode := range []string{"handler observes ctx", "handler ignores ctx", "job on another worker in this process"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			started := make(chan struct{}, 1)
			sawCancel := make(chan error, 1)
			release := make(chan struct{})
			task := core.RawTask("long", func(ctx context.Context, _ *core.Job) error {
				started <- struct{}{}
				go func() { <-ctx.Done(); sawCancel <- context.Cause(ctx) }()
				if mode == "handler ignores ctx" {
					<-release
					return nil // claims success: the cancellation must still win
				}
				<-ctx.Done()
				return ctx.Err()
			})
			db := core.Database(b.db)
			if mode == "job on another worker in this process" {
				db = pgxdriver.New(pgtest.Pool(t)) // its own connections, like another process
				idle, idleSink := b.worker(t, core.WorkerOptions{Tasks: []core.Task{task}, PollInterval: time.Hour})
				runInBackground(t, idle)
				idleSink.events.Wait(t, testkit.Listened, 1)
			}
			w, sink := b.worker(t, core.WorkerOptions{Database: db, Tasks: []core.Task{task}})
			job := b.add(t, "long", nil, nil)
			runInBackground(t, w)
			sink.events.Wait(t, testkit.Listened, 1)
			<-started
			if _, err := b.utils.CancelJob(b.ctx, job.ID, "user asked"); err != nil {
				t.Fatal(err)
			}
			select {
			case cause := <-sawCancel:
				var ce *core.CancelledError
				if !errors.As(cause, &ce) || ce.Reason != "Cancelled: user asked" {
					t.Fatalf("context cause = %v", cause)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("the handler's context was never cancelled")
			}
			close(release)
			eventually(t, "the outcome to be recorded", func() bool { return b.job(t, job.ID).LockedBy == nil })
			r := b.job(t, job.ID)
			if r.Attempts != r.MaxAttempts || deref(r.LastError) != "Cancelled: user asked" {
				t.Fatalf("row = %+v", r)
			}
		})
	}
}

func TestCancelJobWaitingInTheLocalQueue(t *testing.T) {
	t.Parallel()
	b := setup(t)
	bl := newBlocker()
	w, sink := b.worker(t, core.WorkerOptions{Concurrency: 1, LocalQueue: core.LocalQueueOptions{Size: 10}, Tasks: []core.Task{bl.task()}})
	runInBackground(t, w)
	sink.events.Wait(t, testkit.Listened, 1)
	added, err := b.utils.AddJobs(b.ctx, []core.NewJob{{Identifier: "lq", Spec: core.JobSpec{Priority: -1}}, {Identifier: "lq"}})
	if err != nil {
		t.Fatal(err)
	}
	first, waiting := added[0], added[1]
	if first.Priority != -1 {
		first, waiting = waiting, first
	}
	<-bl.started
	eventually(t, "the second job to wait locked in the local queue", func() bool { return b.job(t, waiting.ID).LockedBy != nil })
	if _, err := b.utils.CancelJob(b.ctx, waiting.ID, ""); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the cancellation to be recorded", func() bool { return b.job(t, waiting.ID).LockedBy == nil })
	close(bl.release)
	eventually(t, "the first job to finish", func() bool { return len(b.jobs(t)) == 1 })
	if r := b.job(t, waiting.ID); r.Attempts != r.MaxAttempts || deref(r.LastError) != "Cancelled" {
		t.Fatalf("row = %+v", r)
	}
	for _, id := range bl.ran.list() {
		if id == waiting.ID {
			t.Fatal("the cancelled job ran")
		}
	}
}

// The job runs in another process, which only the database connects to
// this one: the cancellation reaches its handler through NOTIFY, and that
// worker records the job as cancelled.
func TestCancelJobRunningInAnotherProcess(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.exec(t, "create table S.runs (job_id bigint not null, attempts int not null, worker text not null)")
	b.exec(t, "create table S.causes (job_id bigint not null, cause text not null, worker text not null)")
	job := b.add(t, "long", nil, nil)
	child := startHelper(t, b, helperConfig{Jobs: 1, Cancel: true})
	if r := b.job(t, job.ID); deref(r.LockedBy) != child.ID {
		t.Fatalf("the job is locked by %v, not the helper %s", deref(r.LockedBy), child.ID)
	}
	if _, err := b.utils.CancelJob(b.ctx, job.ID, "user asked"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the other process to record the outcome", func() bool { return b.job(t, job.ID).LockedBy == nil })
	if r := b.job(t, job.ID); r.Attempts != r.MaxAttempts || deref(r.LastError) != "Cancelled: user asked" {
		t.Fatalf("row = %+v", r)
	}
	var cause, worker string
	if err := b.pool.QueryRow(b.ctx, b.sql("select cause, worker from S.causes where job_id = $1"), job.ID).Scan(&cause, &worker); err != nil {
		t.Fatalf("the handler in the other process recorded no cause: %v", err)
	}
	if cause != "Cancelled: user asked" || worker != child.ID {
		t.Fatalf("the handler saw cause %q on worker %s", cause, worker)
	}
	if err := child.stop(t); err != nil {
		t.Fatalf("the helper process: %v\n%s", err, child.stderr.String())
	}
	if n := b.queryInt(t, "select count(*) from S.runs"); n != 1 {
		t.Fatalf("the job ran %d times, want once", n)
	}
	if n := b.workerRows(t, child.ID); n != 0 {
		t.Fatal("the helper worker did not deregister at its clean shutdown")
	}
}

// lateListenDB holds LISTEN back until the test lets it through, as a slow
// or lost LISTEN connection would.
type lateListenDB struct {
	core.Database
	open chan struct{}
}

func (l *lateListenDB) Listen(ctx context.Context, channels ...string) (core.Notifications, error) {
	select {
	case <-l.open:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return l.Database.Listen(ctx, channels...)
}

// A job cancelled while its worker was not listening yet (its notification
// went to nobody) is still cancelled once the worker listens.
func TestCancelWhileNotListeningReachesTheHandler(t *testing.T) {
	t.Parallel()
	b := setup(t)
	db := &lateListenDB{Database: b.db, open: make(chan struct{})}
	started, cause := make(chan struct{}), make(chan error, 1)
	w, _ := b.worker(t, core.WorkerOptions{Database: db, Concurrency: 1, PollInterval: time.Hour,
		Tasks: []core.Task{core.RawTask("c", func(ctx context.Context, _ *core.Job) error {
			close(started)
			<-ctx.Done()
			cause <- context.Cause(ctx)
			return ctx.Err()
		})}})
	job := b.add(t, "c", nil, nil)
	stop := runInBackground(t, w)
	<-started
	if _, err := b.utils.CancelJob(b.ctx, job.ID, "changed my mind"); err != nil {
		t.Fatal(err)
	}
	close(db.open)
	select {
	case err := <-cause:
		var ce *core.CancelledError
		if !errors.As(err, &ce) || ce.Reason != "Cancelled: changed my mind" {
			t.Fatalf("the handler's context ended with %v, want the cancellation", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the handler was not cancelled once the worker listened")
	}
	testkit.Eventually(t, "the job to be failed for good and unlocked", func() bool {
		r := b.job(t, job.ID)
		return r.LockedBy == nil && r.Attempts == r.MaxAttempts && deref(r.LastError) == "Cancelled: changed my mind"
	})
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}
