package core

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"
)

// UtilsOptions configures NewUtils. The zero value uses DefaultSchema and
// slog.Default().
type UtilsOptions struct {
	// Schema is the graphile-worker schema; "" means DefaultSchema.
	Schema string
	// Logger receives the client's warnings.
	Logger *slog.Logger
	// Plugins and Hooks hook the adding of jobs (BeforeSchedule, AroundAdd
	// and OnEvent for JobAdded) and SweepStaleWorkers (BeforeRecover); see
	// Hooks. Plugins run first, in order.
	Plugins []Plugin
	Hooks   Hooks
}

// Utils is the client: it adds and manages jobs. It is safe for concurrent
// use. Every method runs one statement (Migrate runs several), on the
// Database, or on the caller's transaction for a Utils made by WithTx.
type Utils struct {
	db     Database // nil for a Utils bound to a caller's transaction
	ex     Executor
	schema string
	log    *slog.Logger
	sql    *utilsSQL
	names  *nameCache
	hooks  *hookSet // nil when none
}

// NewUtils returns a client for db.
func NewUtils(db Database, opts UtilsOptions) (*Utils, error) {
	if db == nil {
		return nil, &ValidationError{Field: "db", Reason: "must not be nil"}
	}
	schema := opts.Schema
	if schema == "" {
		schema = DefaultSchema
	}
	if err := checkSchemaName("UtilsOptions.Schema", schema); err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.Default()
	}
	if errs := checkPlugins("UtilsOptions.Plugins", opts.Plugins); len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return &Utils{db: db, ex: db, schema: schema, log: log, sql: newUtilsSQL(newRenderer(schema)), names: newNameCache(),
		hooks: newHookSet(opts.Plugins, opts.Hooks, log)}, nil
}

// WithTx returns a client whose calls run on tx, typically a transaction the
// caller already holds (see the drivers' wrappers, such as pgxdriver.Tx), so
// that jobs are added or changed atomically with the caller's own writes.
// Nothing is committed or rolled back by the client.
func (u *Utils) WithTx(tx Executor) *Utils {
	c := *u
	c.db, c.ex = nil, tx
	return &c
}

// Schema returns the schema the client works on.
func (u *Utils) Schema() string { return u.schema }

// Migrate brings the schema up to date; see the package function Migrate.
// On a client made by WithTx every step runs in the caller's transaction.
func (u *Utils) Migrate(ctx context.Context) error {
	var begin func(context.Context) (Transaction, error)
	if u.db != nil {
		begin = u.db.Begin
	}
	m, err := newMigrator(u.ex, begin, "UtilsOptions.Schema", u.schema, u.log)
	if err != nil {
		return err
	}
	return m.migrate(ctx)
}

// AddJob adds a job for the task that payload's type names.
func (u *Utils) AddJob(ctx context.Context, payload TaskPayload, spec *JobSpec) (*Job, error) {
	if payload == nil {
		return nil, &ValidationError{Field: "payload", Reason: "must not be nil; use AddRawJob to add a job by identifier"}
	}
	return u.AddRawJob(ctx, payload.TaskIdentifier(), payload, spec)
}

// AddRawJob adds a job for the task named identifier. payload is encoded
// with encoding/json (json.RawMessage and []byte are taken as JSON text);
// nil means {}. spec may be nil.
func (u *Utils) AddRawJob(ctx context.Context, identifier string, payload any, spec *JobSpec) (*Job, error) {
	if u.hooks.schedules() {
		return u.addRawJobHooked(ctx, identifier, payload, spec)
	}
	if spec == nil {
		spec = &JobSpec{}
	}
	if err := checkIdentifier("identifier", identifier); err != nil {
		return nil, err
	}
	if err := spec.validate("JobSpec"); err != nil {
		return nil, err
	}
	body, err := encodePayload("payload", payload)
	if err != nil {
		return nil, err
	}
	var rows Rows
	if spec.JobKey == "" {
		// add_job hands a keyless job to add_jobs; the plain statement
		// AddJobs uses has the same effects without the plpgsql calls.
		rows, err = u.ex.Query(ctx, u.sql.addJobsFast, keylessArgs([]specJSON{newSpecJSON(identifier, body, spec)})...)
	} else {
		mode := string(spec.JobKeyMode)
		if mode == "" {
			mode = string(Replace)
		}
		rows, err = u.ex.Query(ctx, u.sql.addJob,
			identifier, body, nullString(spec.QueueName), nullTime(spec.RunAt), nullInt32(spec.MaxAttempts),
			nullString(spec.JobKey), int32(spec.Priority), nullStrings(spec.Flags), mode)
	}
	if err != nil {
		return nil, fmt.Errorf("gworker: add job %q: %w", identifier, err)
	}
	jobs, err := u.readJobs(ctx, rows)
	if err != nil {
		return nil, fmt.Errorf("gworker: add job %q: %w", identifier, err)
	}
	if len(jobs) == 0 {
		// Only when a worker locked the keyed job between add_jobs detaching
		// locked holders and inserting; adding again succeeds.
		return nil, fmt.Errorf("gworker: add job %q: the job with key %q was taken by a worker at that moment; add it again", identifier, spec.JobKey)
	}
	return jobs[0], nil
}

// AddJobs adds many jobs in one statement (graphile-worker's add_jobs). Job
// keys must be unique within the call. Keyed jobs use Replace, or
// PreserveRunAt when their specs say so; the two cannot be mixed in one call,
// and UnsafeDedupe is not available here (use AddRawJob).
func (u *Utils) AddJobs(ctx context.Context, jobs []NewJob) ([]*Job, error) {
	if len(jobs) == 0 {
		return nil, nil
	}
	if u.hooks.schedules() {
		return u.addJobsHooked(ctx, jobs)
	}
	specs, keyed, preserve, err := checkNewJobs(jobs)
	if err != nil {
		return nil, err
	}
	var rows Rows
	if !keyed {
		rows, err = u.ex.Query(ctx, u.sql.addJobsFast, keylessArgs(specs)...)
	} else {
		payload, jerr := json.Marshal(specs)
		if jerr != nil {
			return nil, fmt.Errorf("gworker: add jobs: encode specs: %w", jerr)
		}
		rows, err = u.ex.Query(ctx, u.sql.addJobs, json.RawMessage(payload), preserve)
	}
	if err != nil {
		return nil, fmt.Errorf("gworker: add %d jobs: %w", len(jobs), err)
	}
	out, err := u.readJobs(ctx, rows)
	if err != nil {
		return nil, fmt.Errorf("gworker: add %d jobs: %w", len(jobs), err)
	}
	return out, nil
}

// checkNewJobs validates jobs for AddJobs and BulkAddJobs and encodes them
// as job specs. keyed says some have a job key; preserve that they use
// PreserveRunAt (mixing it with Replace is refused).
func checkNewJobs(jobs []NewJob) (specs []specJSON, keyed, preserve bool, err error) {
	specs = make([]specJSON, len(jobs))
	keys := make(map[string]int)
	var replace bool
	for i := range jobs {
		j := &jobs[i]
		field := fmt.Sprintf("jobs[%d]", i)
		if err := checkIdentifier(field+".Identifier", j.Identifier); err != nil {
			return nil, false, false, err
		}
		if err := j.Spec.validate(field + ".Spec"); err != nil {
			return nil, false, false, err
		}
		body, err := encodePayload(field+".Payload", j.Payload)
		if err != nil {
			return nil, false, false, err
		}
		s := newSpecJSON(j.Identifier, body, &j.Spec)
		if k := j.Spec.JobKey; k != "" {
			if prev, dup := keys[k]; dup {
				return nil, false, false, &ValidationError{Field: field + ".Spec.JobKey", Value: k, Reason: fmt.Sprintf("is also used by jobs[%d]; keys must be unique within one AddJobs call", prev)}
			}
			keys[k] = i
			s.JobKey = &j.Spec.JobKey
			switch j.Spec.JobKeyMode {
			case UnsafeDedupe:
				return nil, false, false, &ValidationError{Field: field + ".Spec.JobKeyMode", Value: string(UnsafeDedupe), Reason: "is not supported by AddJobs; add such jobs with AddRawJob"}
			case PreserveRunAt:
				preserve = true
			default:
				replace = true
			}
		}
		specs[i] = s
	}
	if preserve && replace {
		return nil, false, false, &ValidationError{Field: "jobs", Reason: "mixes JobKeyMode PreserveRunAt with Replace; add them in separate calls"}
	}
	return specs, len(keys) > 0, preserve, nil
}

// specJSON is one job_spec for add_jobs, as JSON.
type specJSON struct {
	Identifier  string          `json:"identifier"`
	Payload     json.RawMessage `json:"payload"`
	QueueName   *string         `json:"queue_name"`
	RunAt       *time.Time      `json:"run_at"`
	MaxAttempts *int            `json:"max_attempts"`
	JobKey      *string         `json:"job_key"`
	Priority    int             `json:"priority"`
	Flags       []string        `json:"flags"`
}

// newSpecJSON is the job spec of a validated job, its key left out.
func newSpecJSON(identifier string, body json.RawMessage, spec *JobSpec) specJSON {
	s := specJSON{Identifier: identifier, Payload: body, Priority: spec.Priority, Flags: spec.Flags}
	if spec.QueueName != "" {
		s.QueueName = &spec.QueueName
	}
	if !spec.RunAt.IsZero() {
		t := spec.RunAt
		s.RunAt = &t
	}
	if spec.MaxAttempts != 0 {
		s.MaxAttempts = &spec.MaxAttempts
	}
	return s
}

// keylessArgs lays keyless specs out as the parallel arrays of the
// addJobsFast statement: text and bigint arrays only, with ” and 0 for
// "not set", which every driver can pass.
func keylessArgs(specs []specJSON) []any {
	n := len(specs)
	ids, payloads, queues, runAts, flags := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
	maxAttempts, priorities := make([]int64, n), make([]int64, n)
	for i, s := range specs {
		ids[i], payloads[i] = s.Identifier, string(s.Payload)
		if s.QueueName != nil {
			queues[i] = *s.QueueName
		}
		if s.RunAt != nil {
			runAts[i] = s.RunAt.UTC().Format(time.RFC3339Nano)
		}
		if s.MaxAttempts != nil {
			maxAttempts[i] = int64(*s.MaxAttempts)
		}
		priorities[i] = int64(s.Priority)
		if len(s.Flags) > 0 {
			flags[i] = string(flagsJSON(s.Flags))
		}
	}
	return []any{ids, payloads, queues, runAts, maxAttempts, priorities, flags}
}

// RemoveJob removes the job with the given key. A job a worker holds right
// now is not deleted: it loses its key and is not retried after this run.
// It returns ErrJobNotFound when no job has the key.
func (u *Utils) RemoveJob(ctx context.Context, jobKey string) (*Job, error) {
	if jobKey == "" {
		return nil, &ValidationError{Field: "jobKey", Reason: "must not be empty"}
	}
	jobs, err := u.jobsQuery(ctx, "remove job", u.sql.removeJob, jobKey)
	if err != nil {
		return nil, err
	}
	if len(jobs) == 0 {
		return nil, fmt.Errorf("gworker: remove job with key %q: %w", jobKey, ErrJobNotFound)
	}
	return jobs[0], nil
}

// CompleteJobs deletes the given jobs as if they had succeeded, and returns
// them. Jobs a worker holds (locked less than 4 hours ago) are skipped.
func (u *Utils) CompleteJobs(ctx context.Context, ids []int64) ([]*Job, error) {
	return u.jobsQuery(ctx, "complete jobs", u.sql.completeJobs, nonNil(ids))
}

// PermanentlyFailJobs marks the given jobs as failed for good (attempts =
// max attempts) with reason as last_error ("" means graphile-worker's
// "Manually marked as failed"), and returns them. Jobs a worker holds are
// skipped.
func (u *Utils) PermanentlyFailJobs(ctx context.Context, ids []int64, reason string) ([]*Job, error) {
	return u.jobsQuery(ctx, "permanently fail jobs", u.sql.permanentlyFailJobs, nonNil(ids), nullString(reason))
}

// RescheduleOptions says what RescheduleJobs changes; nil fields are kept.
type RescheduleOptions struct {
	RunAt       *time.Time
	Priority    *int
	Attempts    *int
	MaxAttempts *int
}

// RescheduleJobs changes the given jobs and returns them. Jobs a worker holds
// are skipped.
func (u *Utils) RescheduleJobs(ctx context.Context, ids []int64, opts RescheduleOptions) ([]*Job, error) {
	check := func(field string, v *int, lo, hi int) error {
		if v != nil && (*v < lo || *v > hi) {
			return &ValidationError{Field: field, Value: *v, Reason: fmt.Sprintf("must be between %d and %d", lo, hi)}
		}
		return nil
	}
	if err := errors.Join(
		check("RescheduleOptions.Priority", opts.Priority, -32768, 32767),
		check("RescheduleOptions.Attempts", opts.Attempts, 0, 32767),
		check("RescheduleOptions.MaxAttempts", opts.MaxAttempts, 1, 32767),
	); err != nil {
		return nil, err
	}
	var runAt any
	if opts.RunAt != nil {
		runAt = *opts.RunAt
	}
	return u.jobsQuery(ctx, "reschedule jobs", u.sql.rescheduleJobs, nonNil(ids), runAt,
		optInt32(opts.Priority), optInt32(opts.Attempts), optInt32(opts.MaxAttempts))
}

// ForceUnlockWorkers releases every job and queue locked by the given worker
// ids, for workers known to be dead. The jobs become runnable again.
func (u *Utils) ForceUnlockWorkers(ctx context.Context, workerIDs []string) error {
	if workerIDs == nil {
		workerIDs = []string{}
	}
	if _, err := u.ex.Exec(ctx, u.sql.forceUnlockWorkers, workerIDs); err != nil {
		return fmt.Errorf("gworker: force unlock workers: %w", err)
	}
	return nil
}

// CleanupTask is one of graphile-worker's cleanup operations.
type CleanupTask string

const (
	// DeletePermafailedJobs deletes unlocked jobs that have no attempts left.
	DeletePermafailedJobs CleanupTask = "DELETE_PERMAFAILED_JOBS"
	// GCTaskIdentifiers deletes task identifiers no job uses, but for
	// those of live gworker workers' tasks.
	GCTaskIdentifiers CleanupTask = "GC_TASK_IDENTIFIERS"
	// GCJobQueues deletes unlocked queues no job uses.
	GCJobQueues CleanupTask = "GC_JOB_QUEUES"
)

// CleanupOptions configures Cleanup. The zero value runs GCTaskIdentifiers
// and GCJobQueues, graphile-worker's default.
type CleanupOptions struct {
	Tasks []CleanupTask
	// TaskIdentifiersToKeep are never deleted by GCTaskIdentifiers, for
	// example the tasks of graphile-worker (Node) workers, which cache
	// their ids. The tasks of live gworker workers, which cache them too,
	// are kept without being listed here.
	TaskIdentifiersToKeep []string
}

// Cleanup runs the requested cleanup tasks, each as one statement, in the
// order DeletePermafailedJobs, GCTaskIdentifiers, GCJobQueues.
// GCTaskIdentifiers keeps the identifiers of the tasks that live gworker
// workers registered (see ListTasks), and TaskIdentifiersToKeep.
func (u *Utils) Cleanup(ctx context.Context, opts CleanupOptions) error {
	tasks := opts.Tasks
	if len(tasks) == 0 {
		tasks = []CleanupTask{GCTaskIdentifiers, GCJobQueues}
	}
	want := map[CleanupTask]bool{}
	for i, t := range tasks {
		switch t {
		case DeletePermafailedJobs, GCTaskIdentifiers, GCJobQueues:
			want[t] = true
		default:
			return &ValidationError{Field: fmt.Sprintf("CleanupOptions.Tasks[%d]", i), Value: string(t),
				Reason: "must be DELETE_PERMAFAILED_JOBS, GC_TASK_IDENTIFIERS or GC_JOB_QUEUES"}
		}
	}
	keep := append([]string{}, opts.TaskIdentifiersToKeep...)
	if want[GCTaskIdentifiers] {
		// A live worker caches its tasks' ids: deleting one would give the
		// task's next jobs an id that worker never fetches.
		live, err := u.liveWorkerTasks(ctx)
		if err != nil {
			return fmt.Errorf("gworker: cleanup %s: the tasks of live workers: %w", GCTaskIdentifiers, err)
		}
		keep = append(keep, live...)
	}
	steps := []struct {
		task CleanupTask
		sql  string
		args []any
	}{
		{DeletePermafailedJobs, u.sql.deletePermafailedJobs, nil},
		{GCTaskIdentifiers, u.sql.gcTaskIdentifiers, []any{keep}},
		{GCJobQueues, u.sql.gcJobQueues, nil},
	}
	for _, s := range steps {
		if !want[s.task] {
			continue
		}
		if _, err := u.ex.Exec(ctx, s.sql, s.args...); err != nil {
			return fmt.Errorf("gworker: cleanup %s: %w", s.task, err)
		}
	}
	return nil
}

func (u *Utils) jobsQuery(ctx context.Context, what, sql string, args ...any) ([]*Job, error) {
	rows, err := u.ex.Query(ctx, sql, args...)
	if err != nil {
		return nil, fmt.Errorf("gworker: %s: %w", what, err)
	}
	jobs, err := u.readJobs(ctx, rows)
	if err != nil {
		return nil, fmt.Errorf("gworker: %s: %w", what, err)
	}
	return jobs, nil
}

// readJobs scans rows of jobColumns, closes them and fills in task
// identifiers and queue names.
func (u *Utils) readJobs(ctx context.Context, rows Rows) ([]*Job, error) {
	var (
		jobs []*Job
		slab []Job // jobs are allocated a few at a time
	)
	scanner := newJobScanner()
	for rows.Next() {
		if len(slab) == 0 {
			slab = make([]Job, 16)
		}
		j, err := scanner.scan(rows, &slab[0])
		if err != nil {
			rows.Close()
			return nil, err
		}
		slab = slab[1:]
		jobs = append(jobs, j)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return nil, err
	}
	if err := u.names.resolve(ctx, u.ex, u.sql.names, jobs); err != nil {
		return nil, err
	}
	return jobs, nil
}

// nameCache maps task and queue ids to names. Ids come from identity columns
// and are never reused, so an entry never goes stale.
type nameCache struct {
	mu     sync.RWMutex
	tasks  map[int32]string
	queues map[int32]string
}

func newNameCache() *nameCache {
	return &nameCache{tasks: map[int32]string{}, queues: map[int32]string{}}
}

// resolve fills TaskIdentifier and QueueName, reading unknown ids in one
// query. A statement cannot see the task and queue rows that add_jobs
// created within it, hence the separate lookup.
func (c *nameCache) resolve(ctx context.Context, ex Executor, sql string, jobs []*Job) error {
	var missingTasks, missingQueues []int64
	fill := func() {
		missingTasks, missingQueues = missingTasks[:0], missingQueues[:0]
		c.mu.RLock()
		defer c.mu.RUnlock()
		for _, j := range jobs {
			if name, ok := c.tasks[j.taskID]; ok {
				j.TaskIdentifier = name
			} else {
				missingTasks = append(missingTasks, int64(j.taskID))
			}
			if j.jobQueueID != nil {
				if name, ok := c.queues[*j.jobQueueID]; ok {
					j.QueueName = name
				} else {
					missingQueues = append(missingQueues, int64(*j.jobQueueID))
				}
			}
		}
	}
	fill()
	if len(missingTasks) == 0 && len(missingQueues) == 0 {
		return nil
	}
	rows, err := ex.Query(ctx, sql, missingTasks, missingQueues)
	if err != nil {
		return fmt.Errorf("read task and queue names: %w", err)
	}
	defer rows.Close()
	c.mu.Lock()
	for rows.Next() {
		var (
			kind string
			id   int32
			name string
		)
		if err := rows.Scan(&kind, &id, &name); err != nil {
			c.mu.Unlock()
			return err
		}
		if kind == "t" {
			c.tasks[id] = name
		} else {
			c.queues[id] = name
		}
	}
	c.mu.Unlock()
	if err := rows.Err(); err != nil {
		return err
	}
	fill()
	return nil
}

// utilsSQL holds the client's statements, rendered for one schema.
type utilsSQL struct {
	addJob, addJobs, addJobsFast, addJobsCount, bulkNames                                 string
	removeJob, completeJobs, cancelByID, cancelByKey, permanentlyFailJobs, rescheduleJobs string
	forceUnlockWorkers, names                                                             string
	deletePermafailedJobs, gcTaskIdentifiers, gcJobQueues                                 string
}

func newUtilsSQL(r renderer) *utilsSQL {
	from := func(call string) string {
		return r.render("select " + jobColumns + " from {{schema}}." + call + " j where j.id is not null")
	}
	return &utilsSQL{
		addJob: from("add_job($1, $2::json, $3, $4::timestamptz, $5::int, $6, $7::int, $8::text[], $9)"),
		addJobs: from("add_jobs(array(select s from json_populate_recordset(null::{{schema}}.job_spec, $1::json) s)," +
			" $2::boolean)"),
		addJobsFast:         r.render(addJobsFastSQL + "\nreturning " + jobColumns),
		addJobsCount:        r.render(addJobsFastSQL),
		bulkNames:           r.render(bulkNamesSQL),
		removeJob:           from("remove_job($1)"),
		cancelByID:          cancelSQL(r, "j.id = $1::bigint"),
		cancelByKey:         cancelSQL(r, "j.key = $1::text"),
		completeJobs:        from("complete_jobs($1::bigint[])"),
		permanentlyFailJobs: from("permanently_fail_jobs($1::bigint[], $2)"),
		rescheduleJobs:      from("reschedule_jobs($1::bigint[], $2::timestamptz, $3::int, $4::int, $5::int)"),
		forceUnlockWorkers:  r.render("select {{schema}}.force_unlock_workers($1::text[])"),
		names: r.render("select 't', id, identifier from {{schema}}._private_tasks where id = any($1::bigint[])" +
			" union all select 'q', id, queue_name from {{schema}}._private_job_queues where id = any($2::bigint[])"),
		deletePermafailedJobs: r.render("delete from {{schema}}._private_jobs where attempts >= max_attempts and locked_at is null"),
		gcTaskIdentifiers: r.render("delete from {{schema}}._private_tasks t" +
			" where t.identifier <> all($1::text[])" +
			" and not exists (select 1 from {{schema}}._private_jobs j where j.task_id = t.id)"),
		gcJobQueues: r.render("delete from {{schema}}._private_job_queues q" +
			" where q.locked_at is null" +
			" and not exists (select 1 from {{schema}}._private_jobs j where j.job_queue_id = q.id)"),
	}
}

// Helpers turning Go zero values into SQL NULL.

func nullString(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func nullTime(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t
}

func nullInt32(n int) any {
	if n == 0 {
		return nil
	}
	return int32(n)
}

func nullStrings(s []string) any {
	if len(s) == 0 {
		return nil
	}
	return s
}

func optInt32(p *int) any {
	if p == nil {
		return nil
	}
	return int32(*p)
}

// nonNil returns s, or an empty slice for nil, so that an array argument
// is sent as '{}' rather than NULL.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}

// addJobsFastSQL adds keyless jobs with exactly add_jobs' row effects and
// NOTIFY, as one plain statement: no plpgsql call and no JSON record parsing,
// which makes bulk inserts markedly faster. Tasks and queues created here are
// not visible to the final insert's snapshot, hence the unions with the
// CTEs' own RETURNING rows; and a name another transaction commits while this
// statement runs is invisible too, so a conflict is a (no-op) update, which
// returns that row, rather than DO NOTHING, which would lose its jobs.
// AddJobs appends RETURNING; BulkAddJobs counts the rows affected.
const addJobsFastSQL = `with specs as (
  select s.identifier, s.payload, nullif(s.queue_name, '') as queue_name, nullif(s.run_at, '')::timestamptz as run_at,
         nullif(s.max_attempts, 0)::smallint as max_attempts, s.priority::smallint as priority, nullif(s.flags, '')::jsonb as flags
  from unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::bigint[], $6::bigint[], $7::text[])
    as s(identifier, payload, queue_name, run_at, max_attempts, priority, flags)
), new_tasks as (
  insert into {{schema}}._private_tasks (identifier)
  select distinct specs.identifier from specs
  where not exists (select 1 from {{schema}}._private_tasks t where t.identifier = specs.identifier)
  order by 1 -- in order, so that two adds of the same new names cannot deadlock
  on conflict (identifier) do update set identifier = excluded.identifier
  returning id, identifier
), tasks as (
  select t.id, t.identifier from {{schema}}._private_tasks t where t.identifier in (select identifier from specs)
  union all select id, identifier from new_tasks
), new_queues as (
  insert into {{schema}}._private_job_queues (queue_name)
  select distinct specs.queue_name from specs
  where specs.queue_name is not null
    and not exists (select 1 from {{schema}}._private_job_queues q where q.queue_name = specs.queue_name)
  order by 1
  on conflict (queue_name) do update set queue_name = excluded.queue_name
  returning id, queue_name
), queues as (
  select q.id, q.queue_name from {{schema}}._private_job_queues q where q.queue_name in (select queue_name from specs)
  union all select id, queue_name from new_queues
), notified as (
  select pg_notify('jobs:insert', '{"r":' || random()::text || ',"count":' || (select count(*) from specs)::text || '}')
)
insert into {{schema}}._private_jobs as j (job_queue_id, task_id, payload, run_at, max_attempts, priority, flags)
select queues.id, tasks.id, specs.payload::json, coalesce(specs.run_at, now()), coalesce(specs.max_attempts, 25::smallint),
       specs.priority, specs.flags
from specs
cross join notified
inner join tasks on tasks.identifier = specs.identifier
left join queues on queues.queue_name = specs.queue_name`

// ledger reads the schema's newest migration and newest breaking
// migration.
func (u *Utils) ledger(ctx context.Context) (latest, latestBreaking int, err error) {
	m, err := newMigrator(u.ex, nil, "UtilsOptions.Schema", u.schema, u.log)
	if err != nil {
		return 0, 0, err
	}
	return m.readLedger(ctx)
}
