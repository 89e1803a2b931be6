package conformance

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gworker/gworker/core"
)

func (s *suite) engine(t *testing.T) {
	s.enginePrefix = t.Name() + "/"
	t.Run("Migrate", s.testMigrate)
	t.Run("MigrateConcurrently", s.testMigrateConcurrently)
	t.Run("OddSchemaName", s.testOddSchema)
	t.Run("AddJobs", s.testAdd)
	t.Run("KeyedJobs", s.testKeyed)
	if s.h.BeginCallerTx != nil {
		t.Run("AddInCallerTransaction", s.testCallerTx)
	} else {
		t.Log("conformance: Harness.BeginCallerTx is nil; the tests of adding jobs in the caller's transaction are left out")
	}
	t.Run("WorkerCompletesJobs", s.testWorkerCompletes)
	t.Run("FailedJobBacksOff", s.testBackoff)
	t.Run("SerialQueue", s.testSerial)
	t.Run("ForbiddenFlags", s.testFlags)
	t.Run("WorkerWakesUp", s.testWake)
	t.Run("Shutdown", s.testShutdown)
	t.Run("DeadWorkerRecovery", s.testDeadWorkerRecovery)
	t.Run("BulkAddJobs", s.testBulkAdd)
	t.Run("InspectAndActions", s.testInspect)
}

// engineEnv is a test with a migrated schema and a client on it.
type engineEnv struct {
	*env
	q     string // the quoted schema name, for raw SQL
	utils *core.Utils
}

func (s *suite) setupEngine(t *testing.T) *engineEnv {
	t.Helper()
	e := s.setup(t)
	schema := e.schemaName()
	if err := core.Migrate(e.ctx, e.db, core.MigrateOptions{Schema: schema, Logger: discard}); err != nil {
		itemMigrate.fatalf(t, "core.Migrate into schema %q: %v", schema, err)
	}
	u, err := core.NewUtils(e.db, core.UtilsOptions{Schema: schema, Logger: discard})
	if err != nil {
		t.Fatalf("core.NewUtils: %v", err)
	}
	return &engineEnv{env: e, q: quoteIdent(schema), utils: u}
}

var discard = slog.New(slog.DiscardHandler)

func (e *engineEnv) worker(opts core.WorkerOptions) *core.Worker {
	e.t.Helper()
	if opts.Database == nil {
		opts.Database = e.db
	}
	opts.Schema = e.schema
	opts.SkipMigrate = true
	if opts.Logger == nil {
		opts.Logger = discard
	}
	w, err := core.NewWorker(opts)
	if err != nil {
		e.t.Fatalf("core.NewWorker: %v", err)
	}
	return w
}

func (e *engineEnv) add(it item, task string, payload any, spec *core.JobSpec) *core.Job {
	e.t.Helper()
	j, err := e.utils.AddRawJob(e.ctx, task, payload, spec)
	if err != nil {
		it.fatalf(e.t, "AddRawJob(%q): %v", task, err)
	}
	return j
}

func (e *engineEnv) jobCount(it item) int64 {
	e.t.Helper()
	return e.count(it, `select count(*) from `+e.q+`._private_jobs`)
}

func (s *suite) testMigrate(t *testing.T) {
	t.Parallel()
	e := s.setup(t)
	schema := e.schemaName()
	for i := range 2 {
		if err := core.Migrate(e.ctx, e.db, core.MigrateOptions{Schema: schema, Logger: discard}); err != nil {
			itemMigrate.fatalf(t, "core.Migrate #%d into a new schema: %v", i+1, err)
		}
	}
	q := quoteIdent(schema)
	if n := e.count(itemMigrate, `select count(*) from `+q+`.migrations`); n != core.LatestMigration {
		itemMigrate.errorf(t, "the migrations ledger has %d rows, want %d", n, core.LatestMigration)
	}
	var ok bool
	e.queryRow(itemMigrate, `select to_regclass($1) is not null and to_regprocedure($2) is not null`,
		[]any{q + "._private_jobs", q + ".add_job(text, json, text, timestamptz, integer, text, integer, text[], text)"}, &ok)
	if !ok {
		itemMigrate.errorf(t, "after core.Migrate, %s._private_jobs or %s.add_job is missing", q, q)
	}
}

// Concurrent migrators: the losers recognise the winner by SQLSTATE.
func (s *suite) testMigrateConcurrently(t *testing.T) {
	t.Parallel()
	e := s.setup(t)
	schema := e.schemaName()
	const n = 3
	dbs := make([]core.Database, n)
	for i := range dbs {
		dbs[i] = e.other()
	}
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = core.Migrate(e.ctx, dbs[i], core.MigrateOptions{Schema: schema, Logger: discard})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			itemSQLState.errorf(t, "core.Migrate %d of %d running at once on one new schema failed: %v "+
				"(a migrator that lost the race gets a unique violation, which core recognises only through SQLState())", i+1, n, err)
		}
	}
	if c := e.count(itemMigrate, `select count(*) from `+quoteIdent(schema)+`.migrations`); c != core.LatestMigration {
		itemMigrate.errorf(t, "after concurrent migrations the ledger has %d rows, want %d", c, core.LatestMigration)
	}
}

// A schema name with a quote, a double quote, $1 and ? goes everywhere
// core's SQL goes.
func (s *suite) testOddSchema(t *testing.T) {
	t.Parallel()
	e := s.setup(t)
	schema := `it's "odd" $1 ? ` + e.token
	e.dropAtEnd(schema)
	if err := core.Migrate(e.ctx, e.db, core.MigrateOptions{Schema: schema, Logger: discard}); err != nil {
		itemSQLText.fatalf(t, "core.Migrate into schema %q: %v", schema, err)
	}
	u, err := core.NewUtils(e.db, core.UtilsOptions{Schema: schema, Logger: discard})
	if err != nil {
		t.Fatal(err)
	}
	job, err := u.AddRawJob(e.ctx, "odd_task", map[string]string{"s": schema}, &core.JobSpec{JobKey: "k", QueueName: "q", Flags: []string{"f"}})
	if err != nil {
		itemSQLText.fatalf(t, "AddRawJob in schema %q: %v", schema, err)
	}
	if job.TaskIdentifier != "odd_task" || job.QueueName != "q" || job.Key != "k" {
		itemAdd.errorf(t, "job added in schema %q reads %+v", schema, job)
	}
	ran := 0
	w, err := core.NewWorker(core.WorkerOptions{Database: e.db, Schema: schema, SkipMigrate: true, Logger: discard,
		ForbiddenFlags: []string{"other"}, Concurrency: 1,
		Tasks: []core.Task{core.RawTask("odd_task", func(context.Context, *core.Job) error { ran++; return nil })}})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.RunOnce(e.ctx); err != nil {
		itemSQLText.fatalf(t, "RunOnce in schema %q: %v", schema, err)
	}
	if ran != 1 {
		itemSQLText.errorf(t, "the worker in schema %q ran %d jobs, want 1", schema, ran)
	}
	if _, err := u.RemoveJob(e.ctx, "k"); !errors.Is(err, core.ErrJobNotFound) {
		itemAdd.errorf(t, "RemoveJob of a completed job's key: %v, want core.ErrJobNotFound", err)
	}
}

func (s *suite) testAdd(t *testing.T) {
	t.Parallel()
	e := s.setupEngine(t)
	var before time.Time
	e.queryRow(itemScan, `select now()`, nil, &before)

	// Every field of the spec.
	runAt := time.Date(2031, 1, 2, 3, 4, 5, 123456000, zoneIndia)
	j := e.add(itemAdd, "conf_add", map[string]any{"n": 1, "s": "it's ü"}, &core.JobSpec{
		QueueName: "conf q", RunAt: runAt, MaxAttempts: 7, Priority: -3, JobKey: "key 1", Flags: []string{"b", "a"}})
	wantPayload := `{"n": 1, "s": "it's ü"}`
	checks := []struct {
		what string
		ok   bool
		got  any
	}{
		{"ID > 0", j.ID > 0, j.ID},
		{`TaskIdentifier = "conf_add"`, j.TaskIdentifier == "conf_add", j.TaskIdentifier},
		{`QueueName = "conf q"`, j.QueueName == "conf q", j.QueueName},
		{"Payload = " + wantPayload, sameJSON(j.Payload, wantPayload), string(j.Payload)},
		{"Priority = -3", j.Priority == -3, j.Priority},
		{"RunAt = " + runAt.String(), j.RunAt.Equal(runAt), j.RunAt},
		{"Attempts = 0", j.Attempts == 0, j.Attempts},
		{"MaxAttempts = 7", j.MaxAttempts == 7, j.MaxAttempts},
		{"LastError = nil", j.LastError == nil, j.LastError},
		{`Key = "key 1"`, j.Key == "key 1", j.Key},
		{"LockedAt = nil", j.LockedAt == nil, j.LockedAt},
		{`LockedBy = ""`, j.LockedBy == "", j.LockedBy},
		{"Flags = [a b]", reflect.DeepEqual(j.Flags, []string{"a", "b"}), j.Flags},
		{"CreatedAt = now()", !j.CreatedAt.Before(before.Add(-time.Second)) && j.CreatedAt.Before(before.Add(time.Minute)), j.CreatedAt},
	}
	for _, c := range checks {
		if !c.ok {
			itemAdd.errorf(t, "AddRawJob with a full spec returned %s, want %s", fmt.Sprint(c.got), c.what)
		}
	}

	// The defaults: NULL queue, key and flags, run_at now().
	d := e.add(itemAdd, "conf_add", nil, nil)
	if d.QueueName != "" || d.Key != "" || d.Flags != nil || d.MaxAttempts != core.DefaultMaxAttempts || string(d.Payload) != "{}" ||
		d.RunAt.Before(before.Add(-time.Second)) || d.RunAt.After(before.Add(time.Minute)) || d.ID <= j.ID {
		itemAdd.errorf(t, "AddRawJob without a spec returned %+v (payload %s); want no queue, key or flags, max attempts %d, payload {}, run_at now",
			d, d.Payload, core.DefaultMaxAttempts)
	}

	// Many in one statement.
	jobs, err := e.utils.AddJobs(e.ctx, []core.NewJob{
		{Identifier: "conf_bulk", Payload: json.RawMessage(`{"i": 1}`)},
		{Identifier: "conf_bulk", Payload: map[string]int{"i": 2}, Spec: core.JobSpec{QueueName: "bulk q", Flags: []string{"x"}}},
		{Identifier: "conf_other", Payload: []byte(`{"i": 3}`), Spec: core.JobSpec{JobKey: "bulk key", RunAt: runAt, Priority: 5}},
	})
	if err != nil {
		itemAdd.fatalf(t, "AddJobs of three jobs: %v", err)
	}
	if len(jobs) != 3 {
		itemAdd.fatalf(t, "AddJobs of three jobs returned %d", len(jobs))
	}
	var seen []string
	for _, b := range jobs {
		var compact bytes.Buffer
		if err := json.Compact(&compact, b.Payload); err != nil {
			itemAdd.errorf(t, "AddJobs returned a job whose payload is not JSON: %q", b.Payload)
		}
		seen = append(seen, fmt.Sprintf("%s %s q=%q key=%q flags=%v prio=%d", b.TaskIdentifier, compact.String(), b.QueueName, b.Key, b.Flags, b.Priority))
	}
	slices.Sort(seen)
	want := []string{
		`conf_bulk {"i":1} q="" key="" flags=[] prio=0`,
		`conf_bulk {"i":2} q="bulk q" key="" flags=[x] prio=0`,
		`conf_other {"i":3} q="" key="bulk key" flags=[] prio=5`,
	}
	if !reflect.DeepEqual(seen, want) {
		itemAdd.errorf(t, "AddJobs returned\n      %v\n    want\n      %v", seen, want)
	}
	if n := e.jobCount(itemAdd); n != 5 {
		itemAdd.fatalf(t, "%d jobs in the table, want 5", n)
	}

	// Changing jobs: ids go in as []int64, times and ints as arguments.
	newRunAt := time.Date(2032, 5, 6, 7, 8, 9, 654321000, zoneWest)
	prio := 9
	changed, err := e.utils.RescheduleJobs(e.ctx, []int64{j.ID}, core.RescheduleOptions{RunAt: &newRunAt, Priority: &prio})
	if err != nil || len(changed) != 1 || !changed[0].RunAt.Equal(newRunAt) || changed[0].Priority != 9 {
		itemAdd.errorf(t, "RescheduleJobs(run_at %v, priority 9): %v, %v", newRunAt, jobsString(changed), err)
	}
	failed, err := e.utils.PermanentlyFailJobs(e.ctx, []int64{d.ID}, "given up")
	if err != nil || len(failed) != 1 || failed[0].Attempts != failed[0].MaxAttempts || failed[0].LastError == nil || *failed[0].LastError != "given up" {
		itemAdd.errorf(t, "PermanentlyFailJobs: %v, %v", jobsString(failed), err)
	}
	done, err := e.utils.CompleteJobs(e.ctx, []int64{j.ID, d.ID, math.MaxInt64})
	if err != nil || len(done) != 2 {
		itemAdd.errorf(t, "CompleteJobs of two jobs and a missing id: %v, %v", jobsString(done), err)
	}
	if _, err := e.utils.CompleteJobs(e.ctx, nil); err != nil {
		itemArgs.errorf(t, "CompleteJobs(nil) (an empty []int64): %v", err)
	}
	if err := e.utils.ForceUnlockWorkers(e.ctx, []string{"pool-nobody"}); err != nil {
		itemAdd.errorf(t, "ForceUnlockWorkers: %v", err)
	}
	if err := e.utils.Cleanup(e.ctx, core.CleanupOptions{Tasks: []core.CleanupTask{core.DeletePermafailedJobs, core.GCTaskIdentifiers, core.GCJobQueues}}); err != nil {
		itemAdd.errorf(t, "Cleanup: %v", err)
	}
	if n := e.jobCount(itemAdd); n != 3 {
		itemAdd.errorf(t, "%d jobs in the table after completing two, want 3", n)
	}
}

func jobsString(jobs []*core.Job) string {
	var s []string
	for _, j := range jobs {
		le := "<nil>"
		if j.LastError != nil {
			le = *j.LastError
		}
		s = append(s, fmt.Sprintf("{id %d run_at %v prio %d attempts %d/%d last_error %q}", j.ID, j.RunAt, j.Priority, j.Attempts, j.MaxAttempts, le))
	}
	return fmt.Sprint(s)
}

func (s *suite) testKeyed(t *testing.T) {
	t.Parallel()
	e := s.setupEngine(t)
	first := e.add(itemAdd, "conf_keyed", map[string]int{"v": 1}, &core.JobSpec{JobKey: "k"})
	second := e.add(itemAdd, "conf_keyed", map[string]int{"v": 2}, &core.JobSpec{JobKey: "k", Priority: 4})
	if second.ID != first.ID || second.Revision != 1 || !sameJSON(second.Payload, `{"v": 2}`) || second.Priority != 4 {
		itemAdd.errorf(t, "adding again with the same key (replace) returned id %d revision %d payload %s priority %d; want id %d revision 1 payload {\"v\": 2} priority 4",
			second.ID, second.Revision, second.Payload, second.Priority, first.ID)
	}
	kept := e.add(itemAdd, "conf_keyed", map[string]int{"v": 3}, &core.JobSpec{JobKey: "k", JobKeyMode: core.UnsafeDedupe})
	if kept.ID != first.ID || !sameJSON(kept.Payload, `{"v": 2}`) {
		itemAdd.errorf(t, "unsafe_dedupe returned id %d payload %s, want the existing job %d unchanged", kept.ID, kept.Payload, first.ID)
	}
	removed, err := e.utils.RemoveJob(e.ctx, "k")
	if err != nil || removed.ID != first.ID {
		itemAdd.fatalf(t, "RemoveJob(k): %v, %v", removed, err)
	}
	if _, err := e.utils.RemoveJob(e.ctx, "k"); !errors.Is(err, core.ErrJobNotFound) {
		itemAdd.errorf(t, "RemoveJob of a removed key: %v, want core.ErrJobNotFound", err)
	}
	if n := e.jobCount(itemAdd); n != 0 {
		itemAdd.errorf(t, "%d jobs left, want 0", n)
	}
}

func (s *suite) testCallerTx(t *testing.T) {
	t.Parallel()
	e := s.setupEngine(t)
	e.exec(itemSetup, `create table `+e.q+`.orders (id int8 primary key)`)
	other := e.other()
	countOutside := func(sql string) int64 {
		var n int64
		if err := queryRow(e.ctx, other, sql, nil, &n); err != nil {
			itemCallerTx.fatalf(t, "count from another Database: %v", err)
		}
		return n
	}
	for _, commit := range []bool{true, false} {
		id := int64(1)
		if !commit {
			id = 2
		}
		tx, err := s.h.BeginCallerTx(e.ctx, untracked(e.db))
		if err != nil {
			itemCallerTx.fatalf(t, "Harness.BeginCallerTx: %v", err)
		}
		if tx.Executor == nil || tx.Commit == nil || tx.Rollback == nil {
			itemCallerTx.fatalf(t, "Harness.BeginCallerTx returned a CallerTx without Executor, Commit or Rollback")
		}
		tx.Executor = trackExecutor(watchOf(t), tx.Executor)
		// The application's own write and the job, through the wrapper.
		mustExec(t, e.ctx, tx.Executor, itemCallerTx, `insert into `+e.q+`.orders values ($1)`, id)
		u := e.utils.WithTx(tx.Executor)
		job, err := u.AddRawJob(e.ctx, "conf_ship", map[string]int64{"order": id}, &core.JobSpec{QueueName: "ship"})
		if err != nil {
			tx.Rollback(e.ctx)
			itemCallerTx.fatalf(t, "AddRawJob on the wrapped transaction: %v", err)
		}
		if _, err := u.AddJobs(e.ctx, []core.NewJob{{Identifier: "conf_ship", Payload: map[string]int64{"order": id, "n": 2}}}); err != nil {
			tx.Rollback(e.ctx)
			itemCallerTx.fatalf(t, "AddJobs on the wrapped transaction: %v", err)
		}
		jobsSQL := fmt.Sprintf(`select count(*) from %s._private_jobs where payload->>'order' = '%d'`, e.q, id)
		if n := countOutside(jobsSQL); n != 0 {
			tx.Rollback(e.ctx)
			itemCallerTx.fatalf(t, "another Database sees %d of the jobs before the caller committed, want 0", n)
		}
		if commit {
			if err := tx.Commit(e.ctx); err != nil {
				itemCallerTx.fatalf(t, "the caller's Commit: %v", err)
			}
			if n := countOutside(jobsSQL); n != 2 {
				itemCallerTx.errorf(t, "after the caller committed, %d of 2 jobs are visible", n)
			}
			if n := countOutside(fmt.Sprintf(`select count(*) from %s.orders where id = %d`, e.q, id)); n != 1 {
				itemCallerTx.errorf(t, "after the caller committed, its own write is missing")
			}
			if job.QueueName != "ship" || job.TaskIdentifier != "conf_ship" {
				itemCallerTx.errorf(t, "the job added in the caller's transaction reads %+v", job)
			}
		} else {
			if err := tx.Rollback(e.ctx); err != nil {
				itemCallerTx.fatalf(t, "the caller's Rollback: %v", err)
			}
			if n := countOutside(jobsSQL); n != 0 {
				itemCallerTx.errorf(t, "after the caller rolled back, %d jobs added in its transaction remain", n)
			}
		}
	}
}

type payload struct {
	Name string `json:"name"`
}

func (s *suite) testWorkerCompletes(t *testing.T) {
	t.Parallel()
	e := s.setupEngine(t)
	var mu sync.Mutex
	var got []string
	var bad []string
	w := e.worker(core.WorkerOptions{Concurrency: 3, Tasks: []core.Task{
		core.RawTask("conf_greet", func(ctx context.Context, job *core.Job) error {
			var p payload
			err := json.Unmarshal(job.Payload, &p)
			mu.Lock()
			defer mu.Unlock()
			if err != nil || job.Attempts != 1 || job.LockedBy == "" || job.TaskIdentifier != "conf_greet" {
				bad = append(bad, fmt.Sprintf("job %d: payload %s, attempts %d, locked_by %q, task %q", job.ID, job.Payload, job.Attempts, job.LockedBy, job.TaskIdentifier))
			}
			got = append(got, p.Name)
			return nil
		}),
	}})
	names := []string{"ada", "bob", "cy", "dee", "eve"}
	var jobs []core.NewJob
	for _, n := range names {
		jobs = append(jobs, core.NewJob{Identifier: "conf_greet", Payload: payload{Name: n}})
	}
	if _, err := e.utils.AddJobs(e.ctx, jobs); err != nil {
		itemAdd.fatalf(t, "AddJobs: %v", err)
	}
	if err := w.RunOnce(e.ctx); err != nil {
		itemWorker.fatalf(t, "RunOnce: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	slices.Sort(got)
	if !slices.Equal(got, names) || len(bad) > 0 {
		itemWorker.errorf(t, "handlers saw names %v (want %v); wrong jobs: %v", got, names, bad)
	}
	if n := e.jobCount(itemWorker); n != 0 {
		itemWorker.errorf(t, "%d jobs left after they completed, want 0", n)
	}
}

func (s *suite) testBackoff(t *testing.T) {
	t.Parallel()
	e := s.setupEngine(t)
	w := e.worker(core.WorkerOptions{Concurrency: 1, Tasks: []core.Task{
		core.RawTask("conf_fails", func(context.Context, *core.Job) error { return errors.New(`disk "full" – it's ü`) }),
	}})
	job := e.add(itemAdd, "conf_fails", nil, nil)
	// attempts before the run -> after it
	for _, c := range []struct{ before, after int }{{0, 1}, {2, 3}} {
		e.exec(itemSetup, `update `+e.q+`._private_jobs set attempts = $2, run_at = now() - interval '1 minute' where id = $1`, job.ID, int32(c.before))
		// The failure's now() falls between these two readings of the
		// database's clock (failures leave updated_at alone, as
		// graphile-worker's do).
		var before, after time.Time
		e.queryRow(itemSetup, "select now()", nil, &before)
		if err := w.RunOnce(e.ctx); err != nil {
			itemBackoff.fatalf(t, "RunOnce: %v", err)
		}
		e.queryRow(itemSetup, "select now()", nil, &after)
		var (
			attempts  int16
			lastError *string
			exact     bool
			delay     string
			locked    bool
		)
		e.queryRow(itemBackoff, `select attempts, last_error,
			run_at between $2::timestamptz + exp(least(attempts, 10)) * interval '1 second'
			           and $3::timestamptz + exp(least(attempts, 10)) * interval '1 second',
			(run_at - $2::timestamptz)::text, locked_at is not null or locked_by is not null
			from `+e.q+`._private_jobs where id = $1`, []any{job.ID, before, after}, &attempts, &lastError, &exact, &delay, &locked)
		if int(attempts) != c.after || lastError == nil || *lastError != `disk "full" – it's ü` || !exact || locked {
			itemBackoff.errorf(t, "after attempt %d: attempts %d, last_error %s, run_at - (time before the run) = %s (want e^%d s = %.6fs plus the run's duration: %v), still locked %v",
				c.after, attempts, show(lastError), delay, c.after, math.Exp(float64(c.after)), exact, locked)
		}
	}
}

func (s *suite) testSerial(t *testing.T) {
	t.Parallel()
	e := s.setupEngine(t)
	var running, maxRunning, done atomic.Int32
	task := core.RawTask("conf_serial", func(ctx context.Context, _ *core.Job) error {
		n := running.Add(1)
		defer running.Add(-1)
		for m := maxRunning.Load(); n > m && !maxRunning.CompareAndSwap(m, n); m = maxRunning.Load() {
		}
		time.Sleep(2 * time.Millisecond) // work, widening any overlap
		done.Add(1)
		return nil
	})
	const n = 8
	var jobs []core.NewJob
	for range n {
		jobs = append(jobs, core.NewJob{Identifier: "conf_serial", Spec: core.JobSpec{QueueName: "one at a time"}})
	}
	if _, err := e.utils.AddJobs(e.ctx, jobs); err != nil {
		itemAdd.fatalf(t, "AddJobs: %v", err)
	}
	// Two workers, each with several slots and its own Database.
	ws := []*core.Worker{
		e.worker(core.WorkerOptions{Concurrency: 4, Tasks: []core.Task{task}}),
		e.worker(core.WorkerOptions{Database: e.other(), Concurrency: 4, Tasks: []core.Task{task}}),
	}
	var wg sync.WaitGroup
	errs := make([]error, len(ws))
	for i, w := range ws {
		wg.Add(1)
		go func() { defer wg.Done(); errs[i] = w.RunOnce(e.ctx) }()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			itemSerial.fatalf(t, "RunOnce: %v", err)
		}
	}
	// A worker that found the queue locked stops early; the holder drains it.
	if d := done.Load(); d != n {
		itemSerial.errorf(t, "%d of %d jobs ran", d, n)
	}
	if m := maxRunning.Load(); m != 1 {
		itemSerial.errorf(t, "%d jobs of one named queue ran at the same time, want 1", m)
	}
	if c := e.count(itemSerial, `select count(*) from `+e.q+`._private_job_queues where locked_by is not null`); c != 0 {
		itemSerial.errorf(t, "the queue is still locked after its jobs ran")
	}
}

func (s *suite) testFlags(t *testing.T) {
	t.Parallel()
	e := s.setupEngine(t)
	paused := e.add(itemAdd, "conf_flags", nil, &core.JobSpec{Flags: []string{"paused", "other"}})
	plain := e.add(itemAdd, "conf_flags", nil, &core.JobSpec{Flags: []string{"fine"}})
	var ran []int64
	var mu sync.Mutex
	w := e.worker(core.WorkerOptions{Concurrency: 2, ForbiddenFlags: []string{"paused", "also-forbidden"}, Tasks: []core.Task{
		core.RawTask("conf_flags", func(_ context.Context, j *core.Job) error {
			mu.Lock()
			ran = append(ran, j.ID)
			mu.Unlock()
			return nil
		}),
	}})
	if err := w.RunOnce(e.ctx); err != nil {
		itemFlags.fatalf(t, "RunOnce with ForbiddenFlags (its fetch uses the jsonb operator ?|): %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if !slices.Equal(ran, []int64{plain.ID}) {
		itemFlags.errorf(t, "ran jobs %v, want only %d (job %d carries the forbidden flag \"paused\")", ran, plain.ID, paused.ID)
	}
}

// watchDB wraps the Database a worker uses, to see when its LISTEN is in
// place and when it has fetched since, so that a job can be added while the
// worker is idle.
type watchDB struct {
	core.Database
	listening      atomic.Bool
	queriesStarted atomic.Int32 // queries started after Listen returned
	queriesDone    atomic.Int32 // ... and closed
}

func (w *watchDB) Listen(ctx context.Context, channels ...string) (core.Notifications, error) {
	n, err := w.Database.Listen(ctx, channels...)
	if err == nil {
		w.listening.Store(true)
	}
	return n, err
}

func (w *watchDB) Query(ctx context.Context, sql string, args ...any) (core.Rows, error) {
	after := w.listening.Load()
	if after {
		w.queriesStarted.Add(1)
	}
	rows, err := w.Database.Query(ctx, sql, args...)
	if err != nil || !after {
		return rows, err
	}
	return &watchRows{Rows: rows, done: &w.queriesDone}, nil
}

type watchRows struct {
	core.Rows
	once sync.Once
	done *atomic.Int32
}

func (r *watchRows) Close() error {
	err := r.Rows.Close()
	r.once.Do(func() { r.done.Add(1) })
	return err
}

func (s *suite) testWake(t *testing.T) {
	t.Parallel()
	e := s.setupEngine(t)
	ran := make(chan int64, 1)
	db := &watchDB{Database: e.other()}
	poll := time.Hour
	if s.h.NoListen {
		poll = 50 * time.Millisecond
	}
	// A worker that requires notifications runs on a driver that listens,
	// and refuses to run on a poll-only one.
	w := e.worker(core.WorkerOptions{Database: db, Concurrency: 2, PollInterval: poll, RequireNotifications: !s.h.NoListen,
		Tasks: []core.Task{core.RawTask("conf_wake", func(_ context.Context, j *core.Job) error { ran <- j.ID; return nil })}})
	if s.h.NoListen {
		strict := e.worker(core.WorkerOptions{Database: e.other(), RequireNotifications: true,
			Tasks: []core.Task{core.RawTask("conf_wake_strict", func(context.Context, *core.Job) error { return nil })}})
		ctx, cancel := context.WithTimeout(context.Background(), lim(t).wait)
		err := strict.Run(ctx)
		cancel()
		if !errors.Is(err, core.ErrNotificationsUnsupported) {
			itemListenUnsupported.errorf(t, "Run with RequireNotifications on a poll-only driver returned %v, want an error wrapping core.ErrNotificationsUnsupported", err)
		}
	}
	stop := runInBackground(t, w)
	if !s.h.NoListen {
		// Once listening, the worker fetches once (jobs may have come while
		// it was not listening); after that only a notification wakes it
		// within the hour.
		eventually(t, itemWake, "the worker to listen and then fetch", func() bool {
			started := db.queriesStarted.Load()
			return started > 0 && db.queriesDone.Load() == started
		})
	}
	job := e.add(itemAdd, "conf_wake", nil, nil)
	select {
	case id := <-ran:
		if id != job.ID {
			itemWake.errorf(t, "ran job %d, want %d", id, job.ID)
		}
	case <-time.After(lim(t).wait):
		if s.h.NoListen {
			itemWake.fatalf(t, "a job added to an idle poll-only worker (poll interval 50ms) did not run within %v", lim(t).wait)
		}
		itemWake.fatalf(t, "a job added to an idle worker did not run within %v; its poll interval is an hour, so the NOTIFY on jobs:insert did not wake it", lim(t).wait)
	}
	if err := stop(); err != nil {
		itemShutdown.errorf(t, "Run: %v", err)
	}
}

// runInBackground runs w.Run until stop is called; stop returns Run's error
// and fails the test if Run does not return within the suite's wait.
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
			case <-time.After(lim(t).wait):
				err = fmt.Errorf("Run did not return within %v of its context being cancelled", lim(t).wait)
			}
		})
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

func (s *suite) testShutdown(t *testing.T) {
	t.Parallel()
	e := s.setupEngine(t)
	started := make(chan struct{}, 1)
	w := e.worker(core.WorkerOptions{Concurrency: 1, GracePeriod: 20 * time.Millisecond, InterruptedRetryDelay: time.Hour,
		PollInterval: 50 * time.Millisecond, Tasks: []core.Task{core.RawTask("conf_slow", func(ctx context.Context, _ *core.Job) error {
			started <- struct{}{}
			<-ctx.Done()
			return ctx.Err()
		})}})
	job := e.add(itemAdd, "conf_slow", nil, &core.JobSpec{QueueName: "q"})
	stop := runInBackground(t, w)
	select {
	case <-started:
	case <-time.After(lim(t).wait):
		itemWorker.fatalf(t, "the job did not start within %v", lim(t).wait)
	}
	begin := time.Now()
	if err := stop(); err != nil {
		itemShutdown.fatalf(t, "%v", err)
	}
	if d := time.Since(begin); d > promptly {
		itemShutdown.errorf(t, "Run took %v to return after its context was cancelled (grace period 20ms)", d.Round(time.Millisecond))
	}
	var (
		attempts  int16
		locked    bool
		later     bool
		lastError *string
	)
	e.queryRow(itemShutdown, `select attempts, locked_at is not null or locked_by is not null, run_at > now() + interval '50 minutes', last_error
		from `+e.q+`._private_jobs where id = $1`, []any{job.ID}, &attempts, &locked, &later, &lastError)
	if attempts != 0 || locked || !later || lastError == nil {
		itemShutdown.errorf(t, "the interrupted job has attempts %d (want 0), locked %v (want false), run_at an hour on %v, last_error %s",
			attempts, locked, later, show(lastError))
	}
	if n := e.count(itemShutdown, `select count(*) from `+e.q+`._private_job_queues where locked_by is not null`); n != 0 {
		itemShutdown.errorf(t, "the interrupted job's queue is still locked")
	}
}

// A sweep frees a dead worker's jobs and queue, as its BeforeRecover hook
// decides per job, and a worker then runs them.
func (s *suite) testDeadWorkerRecovery(t *testing.T) {
	t.Parallel()
	e := s.setupEngine(t)
	queued := e.add(itemAdd, "conf_recover", nil, &core.JobSpec{QueueName: "conf_q"})
	other := e.add(itemAdd, "conf_recover", nil, nil)
	e.exec(itemSetup, `insert into `+e.q+`._private_gworker_workers (worker_id, hostname, pid, heartbeat_interval, last_heartbeat_at)
		values ('conf-dead', 'h', 1, interval '1 second', now() - interval '1 hour')`)
	e.exec(itemSetup, `update `+e.q+`._private_jobs set locked_by = 'conf-dead', locked_at = now() - interval '1 hour', attempts = 1`)
	e.exec(itemSetup, `update `+e.q+`._private_job_queues set locked_by = 'conf-dead', locked_at = now() - interval '1 hour'`)
	at := time.Now().Add(-time.Minute).UTC().Truncate(time.Microsecond)
	var asked []int64
	u, err := core.NewUtils(e.db, core.UtilsOptions{Schema: e.schema, Logger: discard, Hooks: core.Hooks{
		BeforeRecover: func(_ context.Context, job *core.Job, info core.RecoveryInfo) core.RecoveryDecision {
			asked = append(asked, job.ID) // a sweep asks one job at a time
			if job.ID == queued.ID && info.WorkerID == "conf-dead" && job.QueueName == "conf_q" {
				return core.RecoverReschedule(at)
			}
			return core.RecoverByDefault()
		}}})
	if err != nil {
		t.Fatalf("core.NewUtils: %v", err)
	}
	res, err := u.SweepStaleWorkers(e.ctx, core.SweepOptions{SweepPolicy: core.SweepPolicy{Delay: -1}})
	if err != nil {
		itemRecoverySweep.fatalf(t, "SweepStaleWorkers: %v", err)
	}
	if !slices.Equal(asked, []int64{queued.ID, other.ID}) || !slices.Equal(res.JobIDs, []int64{queued.ID, other.ID}) ||
		res.Queues != 1 || !slices.Equal(res.RemovedWorkerIDs, []string{"conf-dead"}) {
		itemRecoverySweep.fatalf(t, "hook asked about %v; sweep result %+v", asked, res)
	}
	var rescheduled bool
	e.queryRow(itemRecoverySweep, `select run_at = $2 and attempts = 0 and locked_by is null from `+e.q+`._private_jobs where id = $1`,
		[]any{queued.ID, at}, &rescheduled)
	if !rescheduled {
		itemRecoverySweep.errorf(t, "the job the hook rescheduled is not unlocked with attempts 0 and run_at %v", at)
	}
	if n := e.count(itemRecoverySweep, `select count(*) from `+e.q+`._private_job_queues where locked_by is not null`); n != 0 {
		itemRecoverySweep.errorf(t, "%d queues still locked", n)
	}
	var ran atomic.Int32
	w := e.worker(core.WorkerOptions{Recovery: core.RecoveryOptions{Disabled: true}, Tasks: []core.Task{
		core.RawTask("conf_recover", func(context.Context, *core.Job) error { ran.Add(1); return nil }),
	}})
	if err := w.RunOnce(e.ctx); err != nil {
		itemRecoverySweep.fatalf(t, "RunOnce: %v", err)
	}
	if n := ran.Load(); n != 2 || e.jobCount(itemRecoverySweep) != 0 {
		itemRecoverySweep.errorf(t, "after the sweep a worker ran %d of the 2 recovered jobs", n)
	}
}

// BulkAddJobs (COPY where the driver's transactions have core.CopyFromer,
// one INSERT otherwise) stores the rows AddJobs stores.
func (s *suite) testBulkAdd(t *testing.T) {
	t.Parallel()
	e := s.setupEngine(t)
	at := time.Date(2031, 2, 3, 4, 5, 6, 789000000, time.UTC)
	jobs := []core.NewJob{
		{Identifier: "conf_bulk", Payload: json.RawMessage(`{"a": [1, "ü"]}`)},
		{Identifier: "conf_bulk", Spec: core.JobSpec{QueueName: "conf_bq", RunAt: at, Priority: -3, MaxAttempts: 4, Flags: []string{"f1", "f2"}}},
		{Identifier: "conf_bulk_other"},
	}
	rowsText := func() []string {
		rows, err := e.db.Query(e.ctx, `select concat_ws('|', t.identifier, q.queue_name, j.payload::text, j.priority,
			case when j.run_at = $1 then 'at' when j.run_at > now() - interval '1 hour' then 'now' else j.run_at::text end,
			j.attempts, j.max_attempts, j.flags::text, j.key, j.locked_by)
			from `+e.q+`._private_jobs j join `+e.q+`._private_tasks t on t.id = j.task_id
			left join `+e.q+`._private_job_queues q on q.id = j.job_queue_id order by 1`, at)
		if err != nil {
			itemBulk.fatalf(t, "read jobs: %v", err)
		}
		defer rows.Close()
		var out []string
		for rows.Next() {
			var line string
			if err := rows.Scan(&line); err != nil {
				itemBulk.fatalf(t, "read jobs: %v", err)
			}
			out = append(out, line)
		}
		if err := rows.Err(); err != nil {
			itemBulk.fatalf(t, "read jobs: %v", err)
		}
		return out
	}
	if _, err := e.utils.AddJobs(e.ctx, jobs); err != nil {
		itemAdd.fatalf(t, "AddJobs: %v", err)
	}
	want := rowsText()
	e.exec(itemSetup, `delete from `+e.q+`._private_jobs`)
	n, err := e.utils.BulkAddJobs(e.ctx, jobs)
	if err != nil || n != len(jobs) {
		itemBulk.fatalf(t, "BulkAddJobs = %d, %v; want %d", n, err, len(jobs))
	}
	if got := rowsText(); !slices.Equal(got, want) {
		itemBulk.errorf(t, "BulkAddJobs stored\n%s\nwhere AddJobs stored\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
