package core_test

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gworker/gworker/core"
	"github.com/gworker/gworker/driver/pgxdriver"
	"github.com/gworker/gworker/internal/testkit"
)

// actionJobs are ten jobs of task "batch" (one running, one with an
// expired lock, one permanently failed), plus one of another task.
type actionJobs struct {
	batch                    []int64
	running, expired, failed int64
	other                    int64
}

func addActionJobs(t *testing.T, b *bundle) actionJobs {
	t.Helper()
	var a actionJobs
	for i := range 10 {
		var id int64
		switch i % 3 {
		case 0:
			id = b.add(t, "batch", map[string]int{"i": i}, nil).ID
		case 1:
			id = b.sqlID(t, `select id from S.add_job('batch', json_build_object('i', $1::int))`, i)
		default:
			id = b.sqlID(t, `select id from S.add_jobs(array[row('batch', json_build_object('i', $1::int), null, null, null, null, null, null)::S.job_spec])`, i)
		}
		a.batch = append(a.batch, id)
	}
	a.running, a.expired, a.failed = a.batch[2], a.batch[5], a.batch[7]
	b.lockJob(t, a.running, "pool-live", time.Minute)
	b.lockJob(t, a.expired, "pool-gone", 5*time.Hour)
	b.exec(t, "update S._private_jobs set attempts = max_attempts, last_error = 'old failure' where id = $1", a.failed)
	a.other = b.add(t, "other", nil, nil).ID
	return a
}

func TestFilterActionsRunInBatchesAndSkipRunningJobs(t *testing.T) {
	t.Parallel()
	b := setup(t)
	a := addActionJobs(t, b)
	sel := core.JobSelection{Filter: &core.JobFilter{Tasks: []string{"batch"}}, BatchSize: 3}
	free := slices.DeleteFunc(slices.Clone(a.batch), func(id int64) bool { return id == a.running })

	// Dry runs count and change nothing.
	before := b.snapshot(t)
	dry := sel
	dry.DryRun = true
	for name, run := range map[string]func() (core.ActionResult, error){
		"retry": func() (core.ActionResult, error) { return b.utils.RetryJobs(b.ctx, dry) },
		"reschedule": func() (core.ActionResult, error) {
			return b.utils.RescheduleMatching(b.ctx, dry, core.RescheduleSpec{Priority: ptr(1)})
		},
		"complete": func() (core.ActionResult, error) { return b.utils.CompleteMatching(b.ctx, dry) },
		"fail":     func() (core.ActionResult, error) { return b.utils.FailMatching(b.ctx, dry, "x") },
		"remove":   func() (core.ActionResult, error) { return b.utils.RemoveMatching(b.ctx, dry) },
	} {
		res, err := run()
		if err != nil || res.Matched != 10 || res.Skipped != 1 || res.Changed != 0 || res.IDs != nil {
			t.Fatalf("%s dry run = %+v, %v; want 10 matched, 1 skipped", name, res, err)
		}
	}
	if res, err := b.utils.CancelMatching(b.ctx, dry, "x"); err != nil || res.Matched != 10 || res.Skipped != 1 {
		t.Fatalf("cancel dry run = %+v, %v; want 10 matched, 1 skipped (the failed job)", res, err)
	}
	if after := b.snapshot(t); after != before {
		t.Fatalf("a dry run changed the table:\n%s\n->\n%s", before, after)
	}

	// Fail: in batches of 3 (4 statements), all but the running job; the
	// expired lock is freed.
	res, err := b.utils.FailMatching(b.ctx, sel, "bad batch")
	if err != nil || res.Matched != 10 || res.Changed != 9 || res.Skipped != 1 || !slices.Equal(res.IDs, free) {
		t.Fatalf("FailMatching = %+v, %v; want 9 of 10 changed: %v", res, err, free)
	}
	for _, id := range free {
		j := b.job(t, id)
		if j.Attempts != j.MaxAttempts || deref(j.LastError) != "bad batch" || j.LockedAt != nil {
			t.Fatalf("failed job %+v", j)
		}
	}
	if j := b.job(t, a.running); j.Attempts != 1 || j.LastError != nil || deref(j.LockedBy) != "pool-live" {
		t.Fatalf("the running job was changed: %+v", j)
	}

	// Retry wakes an idle worker, which runs the jobs at once although
	// it polls only every hour.
	var ran atomic.Int32
	w, sink := b.worker(t, core.WorkerOptions{PollInterval: time.Hour, Tasks: []core.Task{
		core.RawTask("batch", func(context.Context, *core.Job) error { ran.Add(1); return nil }),
	}})
	stop := runInBackground(t, w)
	eventually(t, "the worker's row", func() bool { return b.workerRows(t, w.ID()) == 1 })
	// Its first fetch came back empty and it listens: only the retry's
	// notification can make it fetch again within the hour.
	sink.events.Wait(t, "worker:fetch", 1)
	sink.events.Wait(t, testkit.Listened, 1)
	res, err = b.utils.RetryJobs(b.ctx, core.JobSelection{Filter: &core.JobFilter{States: []core.JobState{core.JobStateFailed}}, BatchSize: 4})
	if err != nil || res.Changed != 9 || res.Skipped != 0 {
		t.Fatalf("RetryJobs = %+v, %v", res, err)
	}
	eventually(t, "the retried jobs to run", func() bool { return ran.Load() == 9 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if got := b.jobs(t); len(got) != 2 || got[0].ID != a.running || got[1].ID != a.other {
		t.Fatalf("left after the run: %+v", got)
	}
}

func TestActionsOnIDsAndFilters(t *testing.T) {
	t.Parallel()
	b := setup(t)
	a := addActionJobs(t, b)
	now := b.dbNow(t)

	// Reschedule ids: the running one is skipped, the other task's job too
	// when the filter says "batch".
	runAt := now.Add(time.Hour).Truncate(time.Microsecond)
	res, err := b.utils.RescheduleMatching(b.ctx, core.JobSelection{IDs: []int64{a.batch[0], a.running, a.other}, Filter: &core.JobFilter{Tasks: []string{"batch"}}},
		core.RescheduleSpec{RunAt: &runAt, Priority: ptr(-4), Attempts: ptr(2), MaxAttempts: ptr(9)})
	if err != nil || res.Matched != 2 || res.Changed != 1 || res.Skipped != 1 || !slices.Equal(res.IDs, []int64{a.batch[0]}) {
		t.Fatalf("RescheduleMatching = %+v, %v", res, err)
	}
	if j := b.job(t, a.batch[0]); !j.RunAt.Equal(runAt) || j.Priority != -4 || j.Attempts != 2 || j.MaxAttempts != 9 {
		t.Fatalf("rescheduled job %+v", j)
	}

	// Retry resets attempts and run_at, keeps last_error; a failed job
	// becomes runnable.
	res, err = b.utils.RetryJobs(b.ctx, core.JobSelection{IDs: []int64{a.batch[0], a.failed}})
	if err != nil || res.Changed != 2 {
		t.Fatalf("RetryJobs = %+v, %v", res, err)
	}
	for _, id := range []int64{a.batch[0], a.failed} {
		j := b.job(t, id)
		if j.Attempts != 0 || j.RunAt.After(b.dbNow(t)) {
			t.Fatalf("retried job %+v", j)
		}
	}
	if j := b.job(t, a.failed); deref(j.LastError) != "old failure" {
		t.Fatalf("retry dropped last_error: %+v", j)
	}

	// Complete by ids, remove by filter.
	res, err = b.utils.CompleteMatching(b.ctx, core.JobSelection{IDs: []int64{a.batch[1], a.running}})
	if err != nil || res.Changed != 1 || res.Skipped != 1 {
		t.Fatalf("CompleteMatching = %+v, %v", res, err)
	}
	res, err = b.utils.RemoveMatching(b.ctx, core.JobSelection{Filter: &core.JobFilter{PayloadContains: []byte(`{"i": 9}`)}})
	if err != nil || res.Changed != 1 || !slices.Equal(res.IDs, []int64{a.batch[9]}) {
		t.Fatalf("RemoveMatching = %+v, %v", res, err)
	}

	// Cancel takes the running job (its worker is told) and skips the
	// permanently failed one.
	b.exec(t, "update S._private_jobs set attempts = max_attempts, last_error = 'kept' where id = $1", a.batch[3])
	conn, err := b.pool.Acquire(b.ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(b.ctx, `listen "gworker:cancel"`); err != nil {
		t.Fatal(err)
	}
	res, err = b.utils.CancelMatching(b.ctx, core.JobSelection{IDs: []int64{a.running, a.batch[3], a.batch[4]}}, "stop")
	if err != nil || res.Matched != 3 || res.Changed != 2 || res.Skipped != 1 || !slices.Equal(res.IDs, []int64{a.running, a.batch[4]}) {
		t.Fatalf("CancelMatching = %+v, %v", res, err)
	}
	if j := b.job(t, a.running); j.Attempts != j.MaxAttempts || deref(j.LastError) != "Cancelled: stop" || deref(j.LockedBy) != "pool-live" {
		t.Fatalf("cancelled running job %+v", j)
	}
	for {
		ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
		n, err := conn.Conn().WaitForNotification(ctx)
		cancel()
		if err != nil {
			t.Fatalf("no cancel message for the running job: %v", err)
		}
		var msg struct {
			Schema, Worker, Reason string
			ID                     int64
		}
		if err := json.Unmarshal([]byte(n.Payload), &msg); err != nil {
			t.Fatal(err)
		}
		if msg.Schema != b.schema { // another test's
			continue
		}
		if msg.ID != a.running || msg.Worker != "pool-live" || msg.Reason != "Cancelled: stop" {
			t.Fatalf("cancel message %s", n.Payload)
		}
		break
	}
	if j := b.job(t, a.batch[3]); deref(j.LastError) != "kept" {
		t.Fatalf("cancel overwrote a failed job: %+v", j)
	}

	// An empty list of ids selects nothing, even with a filter.
	res, err = b.utils.RemoveMatching(b.ctx, core.JobSelection{IDs: []int64{}, Filter: &core.JobFilter{}})
	if err != nil || res.Matched != 0 {
		t.Fatalf("RemoveMatching(no ids) = %+v, %v", res, err)
	}
	// An empty filter selects everything.
	res, err = b.utils.RemoveMatching(b.ctx, core.JobSelection{Filter: &core.JobFilter{}})
	if err != nil || res.Matched != 9 || res.Skipped != 1 || res.Changed != 8 {
		t.Fatalf("RemoveMatching(everything) = %+v, %v", res, err)
	}
}

// A job another transaction holds a row lock on (a worker fetching it, a
// concurrent action) is skipped, not waited for.
func TestActionsSkipRowsLockedByOtherTransactions(t *testing.T) {
	t.Parallel()
	b := setup(t)
	j1 := b.add(t, "t", nil, nil)
	j2 := b.add(t, "t", nil, nil)
	tx, err := b.pool.Begin(b.ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(context.Background()) }()
	if _, err := tx.Exec(b.ctx, b.sql("select 1 from S._private_jobs where id = $1 for update"), j1.ID); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	res, err := b.utils.RemoveMatching(ctx, core.JobSelection{Filter: &core.JobFilter{Tasks: []string{"t"}}})
	if err != nil || res.Matched != 2 || res.Changed != 1 || res.Skipped != 1 || !slices.Equal(res.IDs, []int64{j2.ID}) {
		t.Fatalf("RemoveMatching = %+v, %v", res, err)
	}
}

func TestActionsRejectBadSelections(t *testing.T) {
	t.Parallel()
	b := setup(t)
	for _, c := range []struct {
		name  string
		err   error
		field string
	}{
		{"empty selection", first(b.utils.RetryJobs(b.ctx, core.JobSelection{})), "JobSelection"},
		{"negative batch", first(b.utils.RetryJobs(b.ctx, core.JobSelection{IDs: []int64{1}, BatchSize: -1})), "JobSelection.BatchSize"},
		{"bad filter", first(b.utils.FailMatching(b.ctx, core.JobSelection{Filter: &core.JobFilter{States: []core.JobState{"x"}}}, "")), "JobFilter.States[0]"},
		{"nothing to change", first(b.utils.RescheduleMatching(b.ctx, core.JobSelection{IDs: []int64{1}}, core.RescheduleSpec{})), "RescheduleSpec"},
		{"max attempts", first(b.utils.RescheduleMatching(b.ctx, core.JobSelection{IDs: []int64{1}}, core.RescheduleSpec{MaxAttempts: ptr(0)})), "RescheduleSpec.MaxAttempts"},
	} {
		var ve *core.ValidationError
		if !errors.As(c.err, &ve) || ve.Field != c.field {
			t.Errorf("%s: %v, want a ValidationError on %s", c.name, c.err, c.field)
		}
	}
}

func first(_ core.ActionResult, err error) error { return err }

// Reads and actions run in the caller's transaction: they see its jobs,
// and what they change goes with its rollback.
func TestInspectAndActionsInTheCallersTransaction(t *testing.T) {
	t.Parallel()
	b := setup(t)
	kept := b.add(t, "tx", nil, nil)
	tx, err := b.pool.Begin(b.ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(context.Background()) }()
	u := b.utils.WithTx(pgxdriver.Tx(tx))
	added, err := u.AddRawJob(b.ctx, "tx", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	page, err := u.ListJobs(b.ctx, core.ListJobsOptions{Filter: core.JobFilter{Tasks: []string{"tx"}}})
	if err != nil || !slices.Equal(jobIDs(page.Jobs), []int64{added.ID, kept.ID}) {
		t.Fatalf("ListJobs in the transaction = %v, %v", jobIDs(page.Jobs), err)
	}
	if st, err := u.JobStats(b.ctx, core.JobStatsOptions{}); err != nil || st.Total != 2 {
		t.Fatalf("JobStats in the transaction = %+v, %v", st, err)
	}
	res, err := u.RemoveMatching(b.ctx, core.JobSelection{Filter: &core.JobFilter{Tasks: []string{"tx"}}, BatchSize: 1})
	if err != nil || res.Changed != 2 {
		t.Fatalf("RemoveMatching in the transaction = %+v, %v", res, err)
	}
	if err := tx.Rollback(b.ctx); err != nil {
		t.Fatal(err)
	}
	if got := b.jobs(t); len(got) != 1 || got[0].ID != kept.ID {
		t.Fatalf("after the rollback: %+v", got)
	}
}

// Run now moves run_at to now in one statement: a permanently failed job
// gets its attempts back, a job with attempts left keeps them, a running
// job is skipped and an expired lock is freed.
func TestRunNowMatching(t *testing.T) {
	t.Parallel()
	b := setup(t)
	a := addActionJobs(t, b)
	waiting := a.batch[0]
	b.exec(t, "update S._private_jobs set attempts = 2, run_at = now() + interval '1 hour', last_error = 'flaky' where id = $1", waiting)
	before := b.job(t, a.running)
	sel := core.JobSelection{IDs: []int64{a.failed, waiting, a.running, a.expired}}
	res, err := b.utils.RunNowMatching(b.ctx, sel)
	want := []int64{a.failed, waiting, a.expired}
	slices.Sort(want)
	if err != nil || res.Matched != 4 || res.Changed != 3 || res.Skipped != 1 || !slices.Equal(res.IDs, want) {
		t.Fatalf("RunNowMatching = %+v, %v; want 4 matched, %v changed, the running job skipped", res, err, want)
	}
	now := b.dbNow(t)
	for id, attempts := range map[int64]int16{a.failed: 0, waiting: 2, a.expired: 1} {
		j := b.job(t, id)
		if j.Attempts != attempts || j.RunAt.After(now) || j.LockedAt != nil || j.LockedBy != nil {
			t.Fatalf("job %d after run now: attempts %d (want %d), run_at %v (want by %v), locked by %v",
				id, j.Attempts, attempts, j.RunAt, now, deref(j.LockedBy))
		}
	}
	if j := b.job(t, a.failed); deref(j.LastError) != "old failure" {
		t.Fatalf("run now dropped last_error: %v", deref(j.LastError))
	}
	if j := b.job(t, a.running); !j.RunAt.Equal(before.RunAt) || j.Attempts != before.Attempts || deref(j.LockedBy) != "pool-live" {
		t.Fatalf("a running job was changed: %+v, was %+v", j, before)
	}
}
