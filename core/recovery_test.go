package core_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/gworker/gworker/core"
	"github.com/gworker/gworker/driver/pgxdriver"
	"github.com/gworker/gworker/internal/clocktest"
	"github.com/gworker/gworker/internal/pgtest"
	"github.com/gworker/gworker/internal/testkit"
)

// deadWorker registers a worker whose last heartbeat was age ago, as a
// crashed gworker leaves it.
func (b *bundle) deadWorker(t *testing.T, id string, age time.Duration) {
	t.Helper()
	b.registerWorker(t, testkit.RegisteredWorker{ID: id, Hostname: "crashed-host", PID: 4242,
		HeartbeatInterval: time.Second, StartedAgo: 24 * time.Hour, HeartbeatAgo: age})
}

// lockJob makes the job look fetched by worker `by`, lockedAgo ago: locked,
// attempt counted, and its named queue (if any) locked too.
func (b *bundle) lockJob(t *testing.T, id int64, by string, lockedAgo time.Duration) {
	t.Helper()
	b.exec(t, `with j as (
		update S._private_jobs set locked_by = $2, locked_at = now() - $3::float8 * interval '1 second', attempts = attempts + 1
		where id = $1 returning job_queue_id)
		update S._private_job_queues q set locked_by = $2, locked_at = now() - $3::float8 * interval '1 second'
		from j where q.id = j.job_queue_id`, id, by, lockedAgo.Seconds())
}

// snapshot is everything a sweep could change, as text.
func (b *bundle) snapshot(t *testing.T) string {
	t.Helper()
	var s string
	if err := b.pool.QueryRow(b.ctx, b.sql(`select concat_ws(E'\n',
		(select string_agg(j::text, E'\n' order by id) from S._private_jobs j),
		(select string_agg(q::text, E'\n' order by id) from S._private_job_queues q),
		(select string_agg(w::text, E'\n' order by worker_id) from S._private_gworker_workers w))`)).Scan(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

// jobText is the job's row as text, to compare before and after.
func (b *bundle) jobText(t *testing.T, id int64) string {
	t.Helper()
	var s string
	if err := b.pool.QueryRow(b.ctx, b.sql("select j::text from S._private_jobs j where id = $1"), id).Scan(&s); err != nil {
		t.Fatal(err)
	}
	return s
}

func (b *bundle) workerRows(t *testing.T, id string) int {
	t.Helper()
	return b.queryInt(t, "select count(*) from S._private_gworker_workers where worker_id = $1", id)
}

func TestMigrateKeepsGworkerObjectsOutOfNodesLedger(t *testing.T) {
	t.Parallel()
	b := setup(t)
	check := func(when string) {
		t.Helper()
		if n := b.queryInt(t, "select count(*) from S.migrations where id > 20"); n != 0 {
			t.Fatalf("%s: graphile-worker's ledger has %d rows above 20", when, n)
		}
		if n := b.queryInt(t, "select count(*) from S.migrations"); n != 20 {
			t.Fatalf("%s: graphile-worker's ledger has %d rows, want 20", when, n)
		}
		if n := b.queryInt(t, "select count(*) from S._private_gworker_migrations where id = 1 and not breaking"); n != 1 {
			t.Fatalf("%s: gworker's ledger lacks migration 1", when)
		}
		if n := b.queryInt(t, "select count(*) from S._private_gworker_migrations"); n != 3 {
			t.Fatalf("%s: gworker's ledger has %d rows, want 3", when, n)
		}
		if n := b.queryInt(t, `select count(*) from pg_class where relnamespace = $1::regnamespace
			and relname in ('_private_gworker_workers', '_private_gworker_migrations', '_private_gworker_throughput', '_private_gworker_audit')
			and relrowsecurity`, b.q); n != 4 {
			t.Fatalf("%s: %d of gworker's 4 tables exist with row level security", when, n)
		}
		// Everything else in the schema is graphile-worker's, checked by the
		// golden catalog: gworker adds nothing but _private_gworker_*.
		var extra []string
		rows, err := b.pool.Query(b.ctx, `select relname::text from pg_class where relnamespace = $1::regnamespace
			and relname ~ '^_private_gworker_' order by 1`, b.q)
		if err == nil {
			extra, err = pgx.CollectRows(rows, pgx.RowTo[string])
		}
		if err != nil {
			t.Fatal(err)
		}
		if want := []string{"_private_gworker_audit", "_private_gworker_audit_id_seq", "_private_gworker_audit_pkey",
			"_private_gworker_migrations", "_private_gworker_migrations_pkey", "_private_gworker_throughput", "_private_gworker_throughput_pkey",
			"_private_gworker_workers", "_private_gworker_workers_pkey"}; !slices.Equal(extra, want) {
			t.Fatalf("%s: gworker's relations = %v, want %v", when, extra, want)
		}
	}
	check("fresh install")

	// A schema graphile-worker (Node) installed has no gworker objects: the
	// next migrate adds them, without touching graphile-worker's ledger.
	b.exec(t, "drop table S._private_gworker_workers, S._private_gworker_throughput, S._private_gworker_audit")
	b.exec(t, "drop table S._private_gworker_migrations")
	dbs := []core.Database{pgxdriver.New(pgtest.Pool(t)), pgxdriver.New(pgtest.Pool(t)), b.db}
	errs := make([]error, len(dbs))
	var wg sync.WaitGroup
	for i, db := range dbs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = core.Migrate(b.ctx, db, core.MigrateOptions{Schema: b.schema})
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("concurrent migrate of a Node-installed schema: %v", err)
	}
	check("after Node's install")
	if err := b.utils.Migrate(b.ctx); err != nil {
		t.Fatal(err)
	}
	check("idempotent")

	// A newer breaking gworker migration is refused like a graphile-worker one.
	b.exec(t, "insert into S._private_gworker_migrations (id, breaking) values (4, true)")
	var newer *core.DatabaseNewerError
	if err := b.utils.Migrate(b.ctx); !errors.As(err, &newer) || newer.LatestBreaking != 4 || !strings.Contains(err.Error(), "_private_gworker_migrations") {
		t.Fatalf("migrate with gworker migration 4 breaking: %v", err)
	}
}

func TestWorkerRegistersHeartbeatsAndDeregisters(t *testing.T) {
	t.Parallel()
	b := setup(t)
	clock := clocktest.New(time.Now())
	w, sink := b.worker(t, core.WorkerOptions{
		Tasks: []core.Task{core.RawTask("noop", func(context.Context, *core.Job) error { return nil })},
		Clock: clock,
	})
	stop := runInBackground(t, w)
	eventually(t, "the worker's row", func() bool { return b.workerRows(t, w.ID()) == 1 })
	// The first heartbeat is due an interval after the start.
	fireNext(t, clock, "core.(*Worker).heartbeat")
	eventually(t, "a heartbeat", func() bool {
		return b.queryInt(t, "select count(*) from S._private_gworker_workers where worker_id = $1 and last_heartbeat_at > started_at", w.ID()) == 1
	})
	infos, err := b.utils.ListActiveWorkers(b.ctx, core.ListWorkersOptions{})
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	if len(infos) != 1 || infos[0].ID != w.ID() || infos[0].Stale || infos[0].PID != os.Getpid() || infos[0].Hostname != host ||
		infos[0].HeartbeatInterval != core.DefaultHeartbeatInterval || infos[0].HeartbeatAge > time.Second || infos[0].RunOnce {
		t.Fatalf("ListActiveWorkers = %+v", infos)
	}

	// A sweep that took the worker for dead removed its row: the next
	// heartbeat notices, says so and registers again.
	b.exec(t, "delete from S._private_gworker_workers where worker_id = $1", w.ID())
	fireNext(t, clock, "core.(*Worker).heartbeat")
	eventually(t, "registration again", func() bool { return b.workerRows(t, w.ID()) == 1 })
	if !sink.has("taken for dead") {
		t.Fatal("no error logged about the lost registration")
	}

	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if n := b.workerRows(t, w.ID()); n != 0 {
		t.Fatal("the row survived a clean shutdown")
	}
}

func TestListActiveWorkersReportsStaleness(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.deadWorker(t, "pool-old", time.Hour)
	b.deadWorker(t, "pool-recent", 10*time.Second)
	job := b.add(t, "t", nil, nil)
	b.lockJob(t, job.ID, "pool-old", time.Hour)
	for _, c := range []struct {
		threshold time.Duration
		stale     []bool
	}{{0, []bool{true, false}}, {5 * time.Second, []bool{true, true}}} {
		infos, err := b.utils.ListActiveWorkers(b.ctx, core.ListWorkersOptions{StaleThreshold: c.threshold})
		if err != nil {
			t.Fatal(err)
		}
		if len(infos) != 2 || infos[0].ID != "pool-old" || infos[1].ID != "pool-recent" {
			t.Fatalf("threshold %v: %+v", c.threshold, infos)
		}
		for i, info := range infos {
			if info.Stale != c.stale[i] {
				t.Errorf("threshold %v: %s stale = %v, want %v", c.threshold, info.ID, info.Stale, c.stale[i])
			}
		}
		if infos[0].LockedJobs != 1 || infos[1].LockedJobs != 0 || infos[0].HeartbeatAge < 59*time.Minute || infos[0].Hostname != "crashed-host" {
			t.Fatalf("threshold %v: %+v", c.threshold, infos)
		}
	}
}

func TestKilledWorkerProcessJobsRunAgainOnAnotherWorker(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.exec(t, "create table S.runs (job_id bigint not null, attempts int not null, worker text not null)")
	const jobs = 3
	var ids []int64
	for i := 0; i < jobs; i++ {
		spec := &core.JobSpec{}
		if i == 0 {
			spec.QueueName = "serial" // its queue must be freed too
		}
		ids = append(ids, b.add(t, "long", map[string]int{"i": i}, spec).ID)
	}

	child := startHelper(t, b, helperConfig{Jobs: jobs})
	childID := child.ID
	if err := child.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	killed := time.Now()
	_ = child.cmd.Wait()
	if n := b.queryInt(t, "select count(*) from S._private_jobs where locked_by = $1", childID); n != jobs {
		t.Fatalf("%d jobs locked by the killed worker, want %d", n, jobs)
	}
	if n := b.queryInt(t, "select count(*) from S._private_job_queues where locked_by = $1", childID); n != 1 {
		t.Fatalf("%d queues locked by the killed worker, want 1", n)
	}

	const threshold, sweepEvery = time.Second, 200 * time.Millisecond
	w, sink := b.worker(t, core.WorkerOptions{
		Concurrency:  jobs,
		PollInterval: 100 * time.Millisecond,
		Recovery: core.RecoveryOptions{HeartbeatInterval: 50 * time.Millisecond, SweepInterval: sweepEvery,
			SweepPolicy: core.SweepPolicy{StaleThreshold: threshold, Delay: -1}},
		Tasks: []core.Task{core.RawTask("long", func(ctx context.Context, job *core.Job) error {
			_, err := b.pool.Exec(ctx, b.sql("insert into S.runs (job_id, attempts, worker) values ($1, $2, $3)"),
				job.ID, job.Attempts, job.LockedBy)
			return err
		})},
	})
	stop := runInBackground(t, w)
	eventually(t, "every job to run again", func() bool {
		return b.queryInt(t, "select count(*) from S.runs where worker = $1", w.ID()) >= jobs
	})
	elapsed := time.Since(killed)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	// Heartbeats stopped at most at the kill; the sweep runs every
	// sweepEvery; the rest is polling and a loaded machine's slack.
	if limit := threshold + sweepEvery + 3*time.Second; elapsed > limit {
		t.Errorf("jobs ran again %v after the kill, want within %v", elapsed, limit)
	}
	t.Logf("jobs ran again %v after the kill (threshold %v, sweep every %v)", elapsed, threshold, sweepEvery)

	rows, err := b.pool.Query(b.ctx, b.sql("select job_id, attempts, worker from S.runs order by job_id, worker = $1"), childID)
	if err != nil {
		t.Fatal(err)
	}
	type run struct {
		JobID    int64
		Attempts int32
		Worker   string
	}
	got, err := pgx.CollectRows(rows, pgx.RowToStructByPos[run])
	if err != nil {
		t.Fatal(err)
	}
	var want []run
	for _, id := range ids {
		// First on the killed worker, then exactly once more on the other,
		// and the killed attempt does not count.
		want = append(want, run{id, 1, w.ID()}, run{id, 1, childID})
	}
	slices.SortFunc(got, func(a, b run) int {
		if a.JobID != b.JobID {
			return int(a.JobID - b.JobID)
		}
		return strings.Compare(a.Worker, b.Worker)
	})
	slices.SortFunc(want, func(a, b run) int {
		if a.JobID != b.JobID {
			return int(a.JobID - b.JobID)
		}
		return strings.Compare(a.Worker, b.Worker)
	})
	if !slices.Equal(got, want) {
		t.Fatalf("runs = %+v, want %+v", got, want)
	}
	if n := len(b.jobs(t)); n != 0 {
		t.Fatalf("%d jobs left", n)
	}
	if n := b.workerRows(t, childID) + b.queryInt(t, "select count(*) from S._private_job_queues where locked_by is not null"); n != 0 {
		t.Fatal("the dead worker's row or a queue lock survived")
	}
	if !sink.has("dead workers found") || !sink.has(childID) {
		t.Fatal("the recovery was not logged")
	}
}

func TestConcurrentSweepsRecoverEachJobOnce(t *testing.T) {
	t.Parallel()
	b := setup(t)
	const n = 30
	var ids []int64
	for i := 0; i < n; i++ {
		spec := &core.JobSpec{}
		if i == 0 {
			spec.QueueName = "q"
		}
		job := b.add(t, "t", nil, spec)
		b.lockJob(t, job.ID, "pool-dead", time.Hour)
		ids = append(ids, job.ID)
	}
	b.deadWorker(t, "pool-dead", time.Hour)
	b.deadWorker(t, "pool-idle", time.Hour) // dead, holding nothing

	clients := make([]*core.Utils, 4)
	for i := range clients {
		u, err := core.NewUtils(pgxdriver.New(pgtest.Pool(t)), core.UtilsOptions{Schema: b.schema})
		if err != nil {
			t.Fatal(err)
		}
		clients[i] = u
	}
	results := make([]core.SweepResult, len(clients))
	errs := make([]error, len(clients))
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, u := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			results[i], errs[i] = u.SweepStaleWorkers(b.ctx, core.SweepOptions{SweepPolicy: core.SweepPolicy{Delay: -1}})
		}()
	}
	close(start)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	var all []int64
	total, queues, removed := 0, 0, 0
	for _, r := range results {
		total += r.Jobs
		queues += r.Queues
		removed += len(r.RemovedWorkerIDs)
		all = append(all, r.JobIDs...)
	}
	slices.Sort(all)
	if total != n || !slices.Equal(all, ids) || queues != 1 || removed != 2 {
		t.Fatalf("sweeps returned %d jobs %v, %d queues, removed %d workers; want each of %d jobs once, 1 queue, 2 workers: %+v",
			total, all, queues, removed, n, results)
	}
	for _, j := range b.jobs(t) {
		if j.Attempts != 0 || j.LockedBy != nil || j.LockedAt != nil || j.LastError == nil ||
			!strings.Contains(*j.LastError, "worker pool-dead died") {
			t.Fatalf("job after sweeps: %+v (last_error %v)", j, deref(j.LastError))
		}
	}
	if n := b.queryInt(t, "select count(*) from S._private_gworker_workers") + b.queryInt(t, "select count(*) from S._private_job_queues where locked_by is not null"); n != 0 {
		t.Fatal("dead workers' rows or a queue lock survived")
	}
}

func TestSweepReturnsJobsWithDelayAndWakesNobodyEarly(t *testing.T) {
	t.Parallel()
	b := setup(t)
	job := b.add(t, "t", nil, nil)
	b.lockJob(t, job.ID, "pool-dead", time.Hour)
	b.deadWorker(t, "pool-dead", time.Hour)
	before := b.dbNow(t)
	res, err := b.utils.SweepStaleWorkers(b.ctx, core.SweepOptions{}) // default delay
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.WorkerIDs, []string{"pool-dead"}) || !slices.Equal(res.JobIDs, []int64{job.ID}) || res.Jobs != 1 {
		t.Fatalf("result %+v", res)
	}
	j := b.job(t, job.ID)
	if d := j.RunAt.Sub(before); d < core.DefaultRecoveryDelay || d > core.DefaultRecoveryDelay+time.Minute {
		t.Fatalf("run_at is %v after the sweep, want the recovery delay %v", d, core.DefaultRecoveryDelay)
	}
	if j.Attempts != 0 || j.LockedBy != nil || !strings.Contains(*j.LastError, "no heartbeat since") ||
		!strings.Contains(*j.LastError, "does not count") {
		t.Fatalf("job %+v, last_error %q", j, *j.LastError)
	}
}

func TestResilientJobsWaitForTheLongerThreshold(t *testing.T) {
	t.Parallel()
	b := setup(t)
	plain := b.add(t, "t", nil, nil)
	resilient := b.add(t, "t", nil, &core.JobSpec{QueueName: "rq", Flags: []string{core.ResilientFlag}})
	b.lockJob(t, plain.ID, "pool-busy", time.Hour)
	b.lockJob(t, resilient.ID, "pool-busy", time.Hour)
	const threshold = 10 * time.Second // × 3 for the resilient job
	b.deadWorker(t, "pool-busy", 20*time.Second)
	opts := core.SweepOptions{SweepPolicy: core.SweepPolicy{StaleThreshold: threshold, Delay: -1}}

	res, err := b.utils.SweepStaleWorkers(b.ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.JobIDs, []int64{plain.ID}) || res.Queues != 0 || len(res.RemovedWorkerIDs) != 0 {
		t.Fatalf("at 2× the threshold: %+v", res)
	}
	if j := b.job(t, resilient.ID); deref(j.LockedBy) != "pool-busy" || j.Attempts != 1 {
		t.Fatalf("resilient job freed early: %+v", j)
	}
	if b.queryInt(t, "select count(*) from S._private_job_queues where locked_by = 'pool-busy'") != 1 || b.workerRows(t, "pool-busy") != 1 {
		t.Fatal("the resilient job's queue or its worker's row was released early")
	}

	b.exec(t, "update S._private_gworker_workers set last_heartbeat_at = now() - interval '31 seconds'")
	res, err = b.utils.SweepStaleWorkers(b.ctx, opts)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.JobIDs, []int64{resilient.ID}) || res.Queues != 1 || !slices.Equal(res.RemovedWorkerIDs, []string{"pool-busy"}) {
		t.Fatalf("past 3× the threshold: %+v", res)
	}
	if j := b.job(t, resilient.ID); j.LockedBy != nil || j.Attempts != 0 {
		t.Fatalf("resilient job not returned: %+v", j)
	}
}

func TestForeignLocksAreLeftToNodesRuleUnlessOptedIn(t *testing.T) {
	t.Parallel()
	b := setup(t)
	foreign := b.add(t, "t", nil, &core.JobSpec{QueueName: "fq"})
	fresh := b.add(t, "t", nil, nil)
	ours := b.add(t, "t", nil, nil)
	b.lockJob(t, foreign.ID, "pool-foreign", time.Hour) // a Node worker's, an hour old
	b.lockJob(t, fresh.ID, "pool-node-busy", time.Second)
	b.lockJob(t, ours.ID, "pool-dead", time.Hour)
	b.deadWorker(t, "pool-dead", time.Hour)
	foreignBefore, freshBefore := b.jobText(t, foreign.ID), b.jobText(t, fresh.ID)

	res, err := b.utils.SweepStaleWorkers(b.ctx, core.SweepOptions{SweepPolicy: core.SweepPolicy{Delay: -1}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.JobIDs, []int64{ours.ID}) || len(res.ForeignWorkerIDs) != 0 {
		t.Fatalf("default sweep: %+v", res)
	}
	if got := b.jobText(t, foreign.ID); got != foreignBefore {
		t.Fatalf("foreign lock touched: %+v, was %+v", got, foreignBefore)
	}
	if b.queryInt(t, "select count(*) from S._private_job_queues where locked_by = 'pool-foreign'") != 1 {
		t.Fatal("foreign queue lock touched")
	}

	res, err = b.utils.SweepStaleWorkers(b.ctx, core.SweepOptions{SweepPolicy: core.SweepPolicy{StaleThreshold: 10 * time.Minute, Delay: -1, SweepForeignLocks: true}})
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(res.JobIDs, []int64{foreign.ID}) || !slices.Equal(res.ForeignWorkerIDs, []string{"pool-foreign"}) || res.Queues != 1 {
		t.Fatalf("foreign sweep: %+v", res)
	}
	if j := b.job(t, foreign.ID); j.LockedBy != nil || j.Attempts != 0 || !strings.Contains(*j.LastError, "unregistered worker pool-foreign") {
		t.Fatalf("foreign job: %+v", j)
	}
	if got := b.jobText(t, fresh.ID); got != freshBefore {
		t.Fatalf("a foreign lock younger than the threshold was touched: %+v", got)
	}
}

func TestSweepDryRunChangesNothing(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var ids []int64
	for i := 0; i < 3; i++ {
		spec := &core.JobSpec{}
		if i == 0 {
			spec.QueueName = "q"
		}
		job := b.add(t, "t", nil, spec)
		b.lockJob(t, job.ID, "pool-dead", time.Hour)
		ids = append(ids, job.ID)
	}
	b.deadWorker(t, "pool-dead", time.Hour)
	before := b.snapshot(t)
	for _, action := range []core.RecoveryAction{core.RecoveryReturn, core.RecoveryFailWithBackoff} {
		res, err := b.utils.SweepStaleWorkers(b.ctx, core.SweepOptions{DryRun: true, SweepPolicy: core.SweepPolicy{Delay: -1, Action: action}})
		if err != nil {
			t.Fatal(err)
		}
		if !res.DryRun || !slices.Equal(res.WorkerIDs, []string{"pool-dead"}) || !slices.Equal(res.JobIDs, ids) || res.Jobs != 3 || res.Queues != 1 ||
			!slices.Equal(res.RemovedWorkerIDs, []string{"pool-dead"}) {
			t.Fatalf("dry run (%s): %+v", action, res)
		}
		if after := b.snapshot(t); after != before {
			t.Fatalf("dry run (%s) changed rows:\nbefore:\n%s\nafter:\n%s", action, before, after)
		}
	}
}

func TestRecoveryActions(t *testing.T) {
	t.Parallel()
	t.Run("fail with backoff", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		job := b.add(t, "t", nil, nil)
		b.lockJob(t, job.ID, "pool-dead", time.Hour)
		b.deadWorker(t, "pool-dead", time.Hour)
		before := b.dbNow(t)
		if _, err := b.utils.SweepStaleWorkers(b.ctx, core.SweepOptions{SweepPolicy: core.SweepPolicy{Action: core.RecoveryFailWithBackoff}}); err != nil {
			t.Fatal(err)
		}
		j := b.job(t, job.ID)
		// attempts 1: graphile-worker's backoff is e^1 seconds.
		if d := j.RunAt.Sub(before); j.Attempts != 1 || j.LockedBy != nil || d < 2*time.Second || d > time.Minute ||
			!strings.Contains(*j.LastError, "counts as failed") {
			t.Fatalf("job %+v (run_at +%v, last_error %q)", j, d, deref(j.LastError))
		}
	})
	t.Run("skip", func(t *testing.T) {
		t.Parallel()
		b := setup(t)
		job := b.add(t, "t", nil, &core.JobSpec{QueueName: "q"})
		b.lockJob(t, job.ID, "pool-dead", time.Hour)
		b.deadWorker(t, "pool-dead", time.Hour)
		b.deadWorker(t, "pool-idle", time.Hour)
		before := b.jobText(t, job.ID)
		res, err := b.utils.SweepStaleWorkers(b.ctx, core.SweepOptions{SweepPolicy: core.SweepPolicy{Action: core.RecoverySkip}})
		if err != nil {
			t.Fatal(err)
		}
		if res.Jobs != 0 || res.Queues != 0 || !slices.Equal(res.WorkerIDs, []string{"pool-dead", "pool-idle"}) ||
			!slices.Equal(res.RemovedWorkerIDs, []string{"pool-idle"}) {
			t.Fatalf("result %+v", res)
		}
		if got := b.jobText(t, job.ID); got != before || b.workerRows(t, "pool-dead") != 1 {
			t.Fatalf("skip changed the job or removed its worker: %+v", got)
		}
	})
}

func TestSweepNeverTakesALiveWorkerForDead(t *testing.T) {
	t.Parallel()
	b := setup(t)
	release := make(chan struct{})
	w, _ := b.worker(t, core.WorkerOptions{
		Tasks: []core.Task{core.RawTask("hold", func(context.Context, *core.Job) error { <-release; return nil })},
		// Heartbeats every 10s: a sweep's 1ms threshold must not matter.
		Recovery: core.RecoveryOptions{HeartbeatInterval: 10 * time.Second},
	})
	stop := runInBackground(t, w)
	job := b.add(t, "hold", nil, nil)
	eventually(t, "the job to start", func() bool { return deref(b.job(t, job.ID).LockedBy) == w.ID() })
	res, err := b.utils.SweepStaleWorkers(b.ctx, core.SweepOptions{SweepPolicy: core.SweepPolicy{StaleThreshold: time.Millisecond, Delay: -1}})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.WorkerIDs) != 0 || res.Jobs != 0 || deref(b.job(t, job.ID).LockedBy) != w.ID() {
		t.Fatalf("a live worker was swept: %+v", res)
	}
	close(release)
	eventually(t, "the job to complete", func() bool { return len(b.jobs(t)) == 0 })
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// RunOnce sweeps once before fetching, so a job a crashed worker held is
// recovered, and with Delay -1 even run, by the next RunOnce; with recovery
// disabled nothing is registered or swept.
func TestRecoveryInRunOnceAndDisabledRecovery(t *testing.T) {
	t.Parallel()
	for _, disabled := range []bool{true, false} {
		t.Run(fmt.Sprintf("disabled=%v", disabled), func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			job := b.add(t, "t", nil, nil)
			b.lockJob(t, job.ID, "pool-dead", time.Hour)
			b.deadWorker(t, "pool-dead", time.Hour)
			var mu sync.Mutex
			var registered []int
			var ran []int64
			w, _ := b.worker(t, core.WorkerOptions{
				Recovery: core.RecoveryOptions{Disabled: disabled, SweepPolicy: core.SweepPolicy{Delay: -1}},
				Tasks: []core.Task{core.RawTask("t", func(ctx context.Context, j *core.Job) error {
					n := -1 // not t.Fatal: this is not the test's goroutine
					_ = b.pool.QueryRow(ctx, b.sql("select count(*) from S._private_gworker_workers where worker_id = $1"), j.LockedBy).Scan(&n)
					mu.Lock()
					defer mu.Unlock()
					ran = append(ran, j.ID)
					registered = append(registered, n)
					return nil
				})},
			})
			b.add(t, "t", nil, nil)
			before := b.jobText(t, job.ID)
			if err := w.RunOnce(b.ctx); err != nil {
				t.Fatal(err)
			}
			if disabled {
				if got := b.jobText(t, job.ID); got != before || b.workerRows(t, "pool-dead") != 1 || len(ran) != 1 {
					t.Fatalf("disabled recovery swept: job %+v, ran %v", got, ran)
				}
				if !slices.Equal(registered, []int{0}) || b.queryInt(t, "select count(*) from S._private_gworker_workers") != 1 {
					t.Fatalf("disabled recovery registered the worker: %v", registered)
				}
				return
			}
			if !slices.Contains(ran, job.ID) || len(ran) != 2 || !slices.Equal(registered, []int{1, 1}) {
				t.Fatalf("ran %v, registered %v", ran, registered)
			}
			if n := b.queryInt(t, "select count(*) from S._private_gworker_workers"); n != 0 {
				t.Fatalf("%d registrations left after RunOnce", n)
			}
		})
	}
}

func TestRecoveryWithoutRegistryTableIsOffWithAWarning(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.exec(t, "drop table S._private_gworker_workers")
	w, sink := b.worker(t, core.WorkerOptions{
		SkipMigrate: true,
		Tasks:       []core.Task{core.RawTask("t", func(context.Context, *core.Job) error { return nil })},
	})
	b.add(t, "t", nil, nil)
	if err := w.RunOnce(b.ctx); err != nil {
		t.Fatal(err)
	}
	if len(b.jobs(t)) != 0 || !sink.has("dead-worker recovery is off") {
		t.Fatal("the worker did not run, or did not warn")
	}
}

func TestRecoveryOptionsAreValidated(t *testing.T) {
	t.Parallel()
	task := core.RawTask("t", func(context.Context, *core.Job) error { return nil })
	db := pgxdriver.New(nil)
	for _, c := range []struct {
		opts  core.RecoveryOptions
		field string
	}{
		{core.RecoveryOptions{HeartbeatInterval: time.Minute, SweepPolicy: core.SweepPolicy{StaleThreshold: time.Minute}}, "Recovery.StaleThreshold"},
		{core.RecoveryOptions{SweepPolicy: core.SweepPolicy{ResilientMultiplier: -1}}, "Recovery.ResilientMultiplier"},
		{core.RecoveryOptions{SweepPolicy: core.SweepPolicy{Action: "retry"}}, "Recovery.Action"},
		{core.RecoveryOptions{SweepInterval: -time.Second}, "Recovery.SweepInterval"},
	} {
		_, err := core.NewWorker(core.WorkerOptions{Database: db, Tasks: []core.Task{task}, Recovery: c.opts})
		if !errors.Is(err, core.ErrInvalidInput) || !strings.Contains(err.Error(), c.field) {
			t.Errorf("%+v: err = %v, want one naming %s", c.opts, err, c.field)
		}
	}
	// Disabled recovery's other settings do not matter.
	if _, err := core.NewWorker(core.WorkerOptions{Database: db, Tasks: []core.Task{task},
		Recovery: core.RecoveryOptions{Disabled: true, SweepPolicy: core.SweepPolicy{Action: "retry"}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := core.NewUtils(db, core.UtilsOptions{}); err != nil {
		t.Fatal(err)
	}
	u, _ := core.NewUtils(db, core.UtilsOptions{})
	if _, err := u.SweepStaleWorkers(context.Background(), core.SweepOptions{SweepPolicy: core.SweepPolicy{Action: "retry"}}); !errors.Is(err, core.ErrInvalidInput) {
		t.Fatalf("SweepStaleWorkers with a bad action: %v", err)
	}
}

// A role that may use graphile-worker's schema but not create tables in it
// still migrates (graphile-worker's part is done) and runs; only gworker's
// own objects, and so recovery, are missing, with a warning.
func TestMigrateWithoutCreatePrivilegeWarnsAndSucceeds(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.exec(t, "drop table S._private_gworker_workers, S._private_gworker_throughput, S._private_gworker_audit")
	b.exec(t, "drop table S._private_gworker_migrations")
	role := "r_" + b.schema
	b.exec(t, "create role "+role)
	t.Cleanup(func() {
		ctx := context.Background()
		_, _ = b.pool.Exec(ctx, "drop owned by "+role)
		_, _ = b.pool.Exec(ctx, "drop role "+role)
	})
	b.exec(t, "grant usage on schema "+b.q+" to "+role)
	b.exec(t, "grant select on S.migrations to "+role)

	cfg, err := pgxpool.ParseConfig(pgtest.URL(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg.AfterConnect = func(ctx context.Context, c *pgx.Conn) error {
		_, err := c.Exec(ctx, "set role "+role)
		return err
	}
	pool, err := pgxpool.NewWithConfig(b.ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	var log syncBuffer
	err = core.Migrate(b.ctx, pgxdriver.New(pool), core.MigrateOptions{Schema: b.schema, Logger: slog.New(slog.NewTextHandler(&log, nil))})
	if err != nil {
		t.Fatalf("migrate without CREATE: %v", err)
	}
	if !strings.Contains(log.String(), "dead-worker recovery will be off") {
		t.Fatalf("no warning; log: %s", log.String())
	}
	if n := b.queryInt(t, "select count(*) from pg_class where relnamespace = $1::regnamespace and relname ~ '^_private_gworker_'", b.q); n != 0 {
		t.Fatalf("%d gworker relations", n)
	}
}
