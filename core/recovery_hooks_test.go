package core_test

import (
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gworker/gworker/core"
)

// recoveryCall is one call of a BeforeRecover hook.
type recoveryCall struct {
	job  core.Job
	info core.RecoveryInfo
}

// recoveryRecorder records BeforeRecover calls and answers from a table
// of decisions by job id (default for the rest).
type recoveryRecorder struct {
	mu     sync.Mutex
	calls  []recoveryCall
	decide map[int64]core.RecoveryDecision
}

func (r *recoveryRecorder) hook(_ context.Context, job *core.Job, info core.RecoveryInfo) core.RecoveryDecision {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, recoveryCall{*job, info})
	return r.decide[job.ID]
}

func (r *recoveryRecorder) take() []recoveryCall {
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.calls
	r.calls = nil
	return c
}

func (r *recoveryRecorder) set(d map[int64]core.RecoveryDecision) {
	r.mu.Lock()
	r.decide = d
	r.mu.Unlock()
}

func callIDs(calls []recoveryCall) []int64 {
	var ids []int64
	for _, c := range calls {
		ids = append(ids, c.job.ID)
	}
	return ids
}

func TestBeforeRecoverDecidesPerJob(t *testing.T) {
	t.Parallel()
	b := setup(t)
	returned := b.add(t, "t", map[string]int{"n": 1}, nil)
	rescheduled := b.add(t, "t", nil, nil)
	failed := b.add(t, "t", nil, nil)
	skipped := b.add(t, "t", nil, &core.JobSpec{QueueName: "q"})
	foreign := b.add(t, "t", nil, nil)
	for _, j := range []*core.Job{returned, rescheduled, failed, skipped} {
		b.lockJob(t, j.ID, "pool-dead", time.Hour)
	}
	b.lockJob(t, foreign.ID, "pool-node", time.Hour)
	b.deadWorker(t, "pool-dead", time.Hour)

	rec := &recoveryRecorder{}
	at := b.dbNow(t).Add(time.Hour).Truncate(time.Microsecond)
	rec.set(map[int64]core.RecoveryDecision{
		rescheduled.ID: core.RecoverReschedule(at),
		failed.ID:      core.RecoverFailWithBackoff(),
		skipped.ID:     core.RecoverSkip(),
	})
	panicky := core.NewPlugin("panicky", core.Hooks{BeforeRecover: func(context.Context, *core.Job, core.RecoveryInfo) core.RecoveryDecision {
		panic("boom")
	}})
	sink := &logSink{}
	u, err := core.NewUtils(b.db, core.UtilsOptions{Schema: b.schema, Logger: slog.New(sink),
		Plugins: []core.Plugin{panicky}, Hooks: core.Hooks{BeforeRecover: rec.hook}})
	if err != nil {
		t.Fatal(err)
	}
	opts := core.SweepOptions{SweepPolicy: core.SweepPolicy{Delay: -1, SweepForeignLocks: true, StaleThreshold: time.Minute}}

	// A dry run asks the hooks, says what they chose, and changes nothing.
	before := b.snapshot(t)
	res, err := u.SweepStaleWorkers(b.ctx, core.SweepOptions{DryRun: true, SweepPolicy: core.SweepPolicy{Delay: -1, SweepForeignLocks: true, StaleThreshold: time.Minute}})
	if err != nil {
		t.Fatal(err)
	}
	if calls := rec.take(); len(calls) != 5 || !calls[0].info.DryRun {
		t.Fatalf("dry run: %d hook calls (%+v)", len(calls), calls)
	}
	if !slices.Equal(res.JobIDs, []int64{returned.ID, rescheduled.ID, failed.ID, foreign.ID}) ||
		!slices.Equal(res.SkippedJobIDs, []int64{skipped.ID}) || res.Queues != 0 || len(res.RemovedWorkerIDs) != 0 {
		t.Fatalf("dry run result %+v", res)
	}
	if after := b.snapshot(t); after != before {
		t.Fatalf("dry run changed rows:\nbefore:\n%s\nafter:\n%s", before, after)
	}

	skippedBefore := b.jobText(t, skipped.ID)
	now := b.dbNow(t)
	res, err = u.SweepStaleWorkers(b.ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	calls := rec.take()
	if got := callIDs(calls); !slices.Equal(got, []int64{returned.ID, rescheduled.ID, failed.ID, skipped.ID, foreign.ID}) {
		t.Fatalf("hook asked about %v", got)
	}
	for _, c := range calls {
		wantWorker, wantForeign := "pool-dead", false
		if c.job.ID == foreign.ID {
			wantWorker, wantForeign = "pool-node", true
		}
		if c.info.WorkerID != wantWorker || c.job.LockedBy != wantWorker || c.info.Foreign != wantForeign ||
			c.info.LastHeartbeatAt.IsZero() != wantForeign || c.info.Action != core.RecoveryReturn || c.info.DryRun ||
			c.job.TaskIdentifier != "t" || c.job.Attempts != 1 || c.job.LockedAt == nil {
			t.Errorf("hook saw job %+v with %+v", c.job, c.info)
		}
		if age := now.Sub(c.info.LastHeartbeatAt); !wantForeign && (age < 59*time.Minute || age > 61*time.Minute) {
			t.Errorf("last heartbeat %v ago, want an hour", age)
		}
	}
	if calls[0].job.QueueName != "" || calls[3].job.QueueName != "q" || strings.ReplaceAll(string(calls[0].job.Payload), " ", "") != `{"n":1}` {
		t.Errorf("queue names %q %q, payload %s", calls[0].job.QueueName, calls[3].job.QueueName, calls[0].job.Payload)
	}
	if !slices.Equal(res.JobIDs, []int64{returned.ID, rescheduled.ID, failed.ID, foreign.ID}) ||
		!slices.Equal(res.SkippedJobIDs, []int64{skipped.ID}) || res.Queues != 0 || len(res.RemovedWorkerIDs) != 0 ||
		!slices.Equal(res.ForeignWorkerIDs, []string{"pool-node"}) {
		t.Fatalf("result %+v", res)
	}
	if !sink.has("hook panicked") || !sink.has("panicky") {
		t.Error("the panicking hook was not logged")
	}

	if j := b.job(t, returned.ID); j.LockedBy != nil || j.Attempts != 0 || j.RunAt.After(b.dbNow(t)) ||
		!strings.Contains(text(j.LastError), "returned to the queue") {
		t.Errorf("default (return) job: %+v %q", j, deref(j.LastError))
	}
	if j := b.job(t, rescheduled.ID); j.LockedBy != nil || j.Attempts != 0 || !j.RunAt.Equal(at) ||
		!strings.Contains(text(j.LastError), "rescheduled by a recovery hook") || !strings.Contains(text(j.LastError), "worker pool-dead died") {
		t.Errorf("rescheduled job: %+v %q (want run_at %v)", j, deref(j.LastError), at)
	}
	if j := b.job(t, failed.ID); j.LockedBy != nil || j.Attempts != 1 || j.RunAt.Sub(now) < 2*time.Second ||
		!strings.Contains(text(j.LastError), "counts as failed") {
		t.Errorf("failed job: %+v %q", j, deref(j.LastError))
	}
	if j := b.job(t, foreign.ID); j.LockedBy != nil || j.Attempts != 0 || !strings.Contains(text(j.LastError), "unregistered worker pool-node") {
		t.Errorf("foreign job: %+v %q", j, deref(j.LastError))
	}
	if got := b.jobText(t, skipped.ID); got != skippedBefore {
		t.Errorf("skipped job changed: %s, was %s", got, skippedBefore)
	}
	if b.queryInt(t, "select count(*) from S._private_job_queues where queue_name = 'q' and locked_by = 'pool-dead'") != 1 ||
		b.workerRows(t, "pool-dead") != 1 {
		t.Fatal("the skipped job's queue was unlocked or its worker's row removed")
	}

	// The next sweep asks again about the skipped job only; by default it
	// is returned, its queue unlocked and the dead worker's row removed.
	rec.set(nil)
	res, err = u.SweepStaleWorkers(b.ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	if got := callIDs(rec.take()); !slices.Equal(got, []int64{skipped.ID}) {
		t.Fatalf("second sweep asked about %v", got)
	}
	if !slices.Equal(res.JobIDs, []int64{skipped.ID}) || res.Queues != 1 || !slices.Equal(res.RemovedWorkerIDs, []string{"pool-dead"}) ||
		len(res.SkippedJobIDs) != 0 {
		t.Fatalf("second sweep: %+v", res)
	}
	if n := b.queryInt(t, "select count(*) from S._private_jobs where locked_by is not null") +
		b.queryInt(t, "select count(*) from S._private_job_queues where locked_by is not null"); n != 0 {
		t.Fatalf("%d locks left", n)
	}
}

// A hook's decision overrides the sweep's action: with RecoverySkip a hook
// still frees the job it reschedules, and its queue, and the resilient
// window is kept (the hook is not asked about a job the sweep may not
// free yet).
func TestBeforeRecoverOverridesTheSweepsAction(t *testing.T) {
	t.Parallel()
	b := setup(t)
	job := b.add(t, "t", nil, &core.JobSpec{QueueName: "q"})
	resilient := b.add(t, "t", nil, &core.JobSpec{Flags: []string{core.ResilientFlag}})
	b.lockJob(t, job.ID, "pool-dead", time.Hour)
	b.lockJob(t, resilient.ID, "pool-dead", time.Hour)
	b.deadWorker(t, "pool-dead", 10*time.Minute) // past 5 min, within 3 × 5 min
	rec := &recoveryRecorder{}
	rec.set(map[int64]core.RecoveryDecision{job.ID: core.RecoverReschedule(time.Time{}), resilient.ID: core.RecoverReschedule(time.Time{})})
	u, err := core.NewUtils(b.db, core.UtilsOptions{Schema: b.schema, Hooks: core.Hooks{BeforeRecover: rec.hook}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := u.SweepStaleWorkers(b.ctx, core.SweepOptions{SweepPolicy: core.SweepPolicy{Action: core.RecoverySkip}})
	if err != nil {
		t.Fatal(err)
	}
	if calls := rec.take(); len(calls) != 1 || calls[0].job.ID != job.ID || calls[0].info.Action != core.RecoverySkip {
		t.Fatalf("hook calls %+v", calls)
	}
	if !slices.Equal(res.JobIDs, []int64{job.ID}) || res.Queues != 1 || len(res.RemovedWorkerIDs) != 0 {
		t.Fatalf("result %+v", res)
	}
	if j := b.job(t, job.ID); j.LockedBy != nil || j.Attempts != 0 || j.RunAt.After(b.dbNow(t)) {
		t.Fatalf("rescheduled job %+v", j)
	}
	if j := b.job(t, resilient.ID); deref(j.LockedBy) != "pool-dead" {
		t.Fatalf("resilient job freed within its window: %+v", j)
	}
}

// A worker's periodic sweep asks the worker's hooks: a job of a dead
// worker rescheduled by the hook runs on the live worker, though the
// worker's own action is RecoverySkip.
func TestWorkerSweepAsksBeforeRecover(t *testing.T) {
	t.Parallel()
	b := setup(t)
	job := b.add(t, "t", nil, nil)
	b.lockJob(t, job.ID, "pool-dead", time.Hour)
	b.deadWorker(t, "pool-dead", time.Hour)
	rec := &recoveryRecorder{}
	rec.set(map[int64]core.RecoveryDecision{job.ID: core.RecoverReschedule(time.Time{})})
	ran := &counter{}
	w, _ := b.worker(t, core.WorkerOptions{
		Tasks:        []core.Task{core.RawTask("t", func(_ context.Context, j *core.Job) error { ran.record(j.ID); return nil })},
		PollInterval: 100 * time.Millisecond,
		Recovery:     core.RecoveryOptions{SweepInterval: 100 * time.Millisecond, SweepPolicy: core.SweepPolicy{Action: core.RecoverySkip}},
		Hooks:        core.Hooks{BeforeRecover: rec.hook},
	})
	stop := runInBackground(t, w)
	eventually(t, "the rescheduled job to run", func() bool { return len(b.jobs(t)) == 0 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if got := ran.list(); !slices.Equal(got, []int64{job.ID}) {
		t.Fatalf("ran %v", got)
	}
	calls := rec.take()
	if len(calls) == 0 || calls[0].job.ID != job.ID || calls[0].info.WorkerID != "pool-dead" || calls[0].info.Action != core.RecoverySkip {
		t.Fatalf("hook calls %+v", calls)
	}
	for _, c := range calls {
		if c.job.ID != job.ID {
			t.Fatalf("hook asked about job %d", c.job.ID)
		}
	}
}

// text is *p, or "" for nil.
func text(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}
